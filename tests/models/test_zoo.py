"""A representative subset of ``benchmarks/zoo.py``: real torchvision / timm / MONAI models converted by
``convert_to_sre`` are exactly invariant (classifiers) or equivariant (U-Nets) in float64 by an independent
orbit test, transformers are reported as not convertible, and the checker agrees with the independent test.
The larger models are marked slow."""

import dataclasses
import importlib.util
import os
import sys

import pytest
import torch.nn as nn

# find_spec, not importorskip: importing timm and monai at collection would cost every test run ~10 s.
pytestmark = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("torchvision", "timm", "monai")),
                                reason="needs torchvision, timm and monai (the zoo extra)")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _zoo():
    spec = importlib.util.spec_from_file_location("zoo_benchmark", os.path.join(ROOT, "benchmarks", "zoo.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


zoo = _zoo()


def _run(name_or_entry):
    entry = zoo.ZOO[name_or_entry] if isinstance(name_or_entry, str) else name_or_entry
    row = zoo.run_entry(entry, timing=False)
    assert row["converts"], row.get("traceback")
    return row


def _assert_exact(row):
    assert row["after"]["exact"], (row["after"], row["report"])
    assert row["after"]["max_error"] <= zoo.THRESHOLD and len(row["after"]["errors"]) in (8, 48)
    assert row["checker"]["passed"] and row["agree"] and row["report"]["unconverted"] == []
    assert not row["before"]["exact"]  # the unconverted model is not: the test can fail


# Fast tier: the zoo's constructors at the smallest widths they allow.
TINY = {
    "unet_2d": zoo.Entry("unet_2d", "monai", zoo._monai("UNet", spatial_dims=2, in_channels=1, out_channels=2,
                                                         channels=(4, 8, 8), strides=(2, 2), num_res_units=1),
                         (1, 16, 16), "segmentation"),
    "basicunet_2d": zoo.Entry("basicunet_2d", "monai", zoo._monai("BasicUNet", spatial_dims=2, in_channels=1,
                                                                   out_channels=2, features=(4, 4, 4, 4, 4, 4)),
                              (1, 32, 32), "segmentation"),
    "densenet_3d": zoo.Entry("densenet_3d", "monai", zoo._monai("DenseNet", spatial_dims=3, in_channels=1,
                                                                 out_channels=2, init_features=4, growth_rate=4,
                                                                 block_config=(1, 1), bn_size=1), (1, 8, 8, 8)),
}


@pytest.fixture(scope="module")
def tiny_rows():
    return {}


@pytest.mark.parametrize("name", ["unet_2d", pytest.param("basicunet_2d", marks=pytest.mark.slow),
                                  pytest.param("densenet_3d", marks=pytest.mark.slow)])
def test_fast_subset_exact(tiny_rows, name):
    tiny_rows[name] = tiny_rows.get(name) or _run(TINY[name])
    row = tiny_rows[name]
    _assert_exact(row)
    assert row["params_after"] < row["params_before"]
    if "unet" in name:
        assert row["after"]["output"] == "map" and row["group"] == "d4"
    else:
        assert row["after"]["output"] == "logits" and row["group"] == "cube"


@pytest.mark.slow
def test_tiny_vision_transformer_is_not_convertible():
    from torchvision.models.vision_transformer import VisionTransformer

    entry = zoo.Entry("tiny_vit", "torchvision", lambda: VisionTransformer(32, 16, 1, 2, 8, 16, num_classes=3),
                      (3, 32, 32), "transformer")
    row = zoo.run_entry(entry, timing=False)
    reasons = dict(row["report"]["unconverted"])
    assert "pos_embedding" in reasons["encoder"]
    assert not row["checker"]["passed"] and not row["after"]["exact"] and row["agree"]
    assert "heads.head.weight" in row["checker"]["reinitialized"]  # torchvision's zero-initialised head
    line = zoo.format_row(row)
    assert line.count("|") == len(zoo.COLUMNS) + 1 and "FAIL" in line


def test_markdown_page(tiny_rows):
    tiny_rows["unet_2d"] = tiny_rows.get("unet_2d") or _run(TINY["unet_2d"])
    broken = {"model": "broken", "source": "x", "kind": "classifier", "input_shape": [3, 8, 8], "converts": False,
              "error": "RuntimeError: boom"}
    rows = [tiny_rows["unet_2d"], broken]
    page = zoo.format_markdown(rows, {"commands": ["python benchmarks/zoo.py"], "date": "today", "torch": "2",
                                      "machine": "cpu", "threads": 1})
    assert "2 models, 1 convert without error, **1 exactly" in page
    assert "- broken: does not convert: RuntimeError: boom" in page
    assert page.count("\n| ") == 3  # header + 2 rows


def test_forward_time_ratio_runs():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1))
    timing = zoo.forward_time_ratio(net, net, (1, 8, 8), repeats=2)
    assert timing["ratio"] > 0


# Smaller, odd inputs where the zoo's size only costs time: TF-"same" padding is asymmetric at odd sizes.
ODD_INPUTS = {"timm/tf_efficientnet_b0": (3, 33, 33)}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["squeezenet1_1", "resnet18", "googlenet", "timm/convnext_atto",
                                  "timm/tf_efficientnet_b0", "timm/nf_resnet26", "timm/ese_vovnet19b_dw",
                                  "timm/mobilevit_xxs", "monai_efficientnet_b0_2d", "monai_seresnet50_2d",
                                  "monai_unet_3d"])
def test_slow_subset_exact(name):
    entry = zoo.ZOO[name]
    if name in ODD_INPUTS:
        entry = dataclasses.replace(entry, shape=ODD_INPUTS[name])
    _assert_exact(_run(entry))


@pytest.mark.slow
def test_video_model_exact_in_the_plane():
    row = _run("r3d_18")
    assert row["group"] == "plane" and row["report"]["restricted"]  # its (3, 7, 7) stem, stride (1, 2, 2)
    _assert_exact(row)
