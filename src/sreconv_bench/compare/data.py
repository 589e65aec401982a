"""The comparison's datasets, built by the engine's own pipeline (``sreconv.engine.runner.build_datasets``)."""

from __future__ import annotations

from typing import Any

from .config import CompareConfig

__all__ = ["compare_datasets"]


def compare_datasets(config: CompareConfig, rotation_aug: str | None) -> dict[str, Any]:
    """``{"train", "test", "image_size"}``: the fixed training subset (augmented by ``rotation_aug`` only) and
    the fixed test subset, at the native size unless ``config.image_size`` is set.

    Raises:
        ValueError: the dataset is not 2D, or the engine refuses the settings.
    """
    from sreconv.data.medmnist import FLAGS_2D, FLAGS_3D
    from sreconv.engine.config import TrainConfig
    from sreconv.engine.runner import build_datasets

    name = config.dataset.lower()
    if name in FLAGS_3D:
        raise ValueError(f"sreconv compare is 2D only; {name!r} is a 3D dataset")
    # Native size by default: the engine's own default resizes 28-pixel MedMNIST to 32.
    image_size = config.image_size or (config.medmnist_size if name in FLAGS_2D else None)
    train_config = TrainConfig(
        dataset=name, data_root=config.data_root, medmnist_size=config.medmnist_size, image_size=image_size,
        res_keep_conv1=True, train_flip_p=0.0, moco_aug=False, translation=False, train_rotation=rotation_aug,
        limit_train=config.limit_train or None, limit_test=config.limit_test or None)
    sets = build_datasets(train_config, train=True)
    test = sets["test"]
    if test.spatial_dims != 2:
        raise ValueError(f"sreconv compare is 2D only; {name!r} is {test.spatial_dims}D")
    return {"train": sets["train"], "test": test, "image_size": int(test[0][0].shape[-1])}
