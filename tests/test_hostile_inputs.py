"""What a hostile or careless user gets: a clear one-line error naming the argument, before any work starts,
with nothing lost and nothing executed. Table-driven: layers and models (Python API), then every command.

Each command case runs ``sreconv ...`` in-process and asserts the exit status, that stderr is exactly one line
``sreconv <cmd>: error: ...`` containing the expected words (no traceback), and that the output folder the
command was pointed at was not created. The checkpoint cases also assert that a planted pickle did not run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch

import sreconv
from sreconv import SREConv2d, SREConv3d, SREConvTranspose2d
from sreconv.cli import main
from tests.data.fakes import write_fashion, write_folder, write_medmnist

pytest.importorskip("mlxtend")


# ------------------------------------------------------------------------------------------------ library
@dataclass(frozen=True)
class Call:
    name: str
    call: Callable[[], Any]
    error: type
    match: str


LIBRARY = [
    Call("conv in_channels 0", lambda: SREConv2d(0, 4, 3), ValueError, "in_channels must be an int >= 1"),
    Call("conv in_channels float", lambda: SREConv2d(1.5, 4, 3), TypeError, "in_channels must be an int"),
    Call("conv in_channels bool", lambda: SREConv2d(True, 4, 3), TypeError, "in_channels must be an int"),
    Call("conv out_channels -1", lambda: SREConv2d(4, -1, 3), ValueError, "out_channels must be an int >= 1"),
    Call("conv kernel 0", lambda: SREConv2d(4, 4, 0), ValueError, "kernel_size must be an int >= 1"),
    Call("conv kernel even", lambda: SREConv2d(4, 4, 4), ValueError, "kernel_size must be odd"),
    Call("conv stride 0", lambda: SREConv2d(4, 4, 3, stride=0), ValueError, "stride must be an int >= 1"),
    Call("conv padding -1", lambda: SREConv2d(4, 4, 3, padding=-1), ValueError, "padding must be an int >= 0"),
    Call("conv padding word", lambda: SREConv2d(4, 4, 3, padding="full"), ValueError, "padding must be one of"),
    Call("conv same+stride", lambda: SREConv2d(4, 4, 3, 2, "same"), ValueError, "padding='same' needs stride=1"),
    Call("conv dilation 0", lambda: SREConv2d(4, 4, 3, dilation=0), ValueError, "dilation must be an int >= 1"),
    Call("conv groups", lambda: SREConv2d(3, 4, 3, groups=2), ValueError, "groups=2 must divide in_channels=3"),
    Call("conv padding_mode", lambda: SREConv2d(4, 4, 3, padding_mode="mirror"), ValueError,
         "padding_mode must be one of"),
    Call("conv ring_basis", lambda: SREConv2d(4, 4, 3, ring_basis="soft"), ValueError, "ring_basis must be one of"),
    Call("conv impl", lambda: SREConv2d(4, 4, 3, impl="fast"), ValueError, "impl must be one of"),
    Call("conv sre_k 0", lambda: SREConv2d(4, 4, 5, sre_k=0), ValueError, "sre_k must be between 1 and"),
    Call("conv sre_k too many", lambda: SREConv2d(4, 4, 5, sre_k=99), ValueError, "sre_k must be between 1 and"),
    Call("conv force_circular int", lambda: SREConv2d(4, 4, 3, force_circular=1), TypeError,
         "force_circular must be a bool"),
    Call("conv sigma on hard", lambda: SREConv2d(4, 4, 3, gaussian_sigma=1.0), ValueError,
         "gaussian_sigma only applies to ring_basis='gaussian'"),
    Call("conv output_padding", lambda: SREConv2d(4, 4, 3, output_padding=1), TypeError, "output_padding"),
    Call("transposed output_padding", lambda: SREConvTranspose2d(4, 4, 3, stride=2, output_padding=2), ValueError,
         "output_padding must be smaller than stride or dilation"),
    Call("conv3d kernel even", lambda: SREConv3d(2, 2, 2), ValueError, "kernel_size must be odd"),
    Call("conv input channels", lambda: SREConv2d(4, 4, 3)(torch.randn(1, 3, 8, 8)), ValueError,
         "in_channels=4 but the input has 3 channels"),
    Call("conv input dims", lambda: SREConv2d(4, 4, 3)(torch.randn(8, 8)), ValueError, "4 or 3 dims"),
    Call("conv input type", lambda: SREConv2d(4, 4, 3)("image"), TypeError, "expects a torch.Tensor"),
    Call("model unknown", lambda: sreconv.create_model("sre_resnet_18"), ValueError, "Did you mean 'sre_resnet18'"),
    Call("model num_classes -2", lambda: sreconv.create_model("sre_resnet18", num_classes=-2), ValueError,
         "num_classes must be an int >= 0"),
    Call("model num_classes float", lambda: sreconv.create_model("plain_resnet18", num_classes=2.5), ValueError,
         "num_classes must be an int >= 0"),
    Call("model in_channels 0", lambda: sreconv.create_model("sre_resnet18", in_channels=0), ValueError,
         "in_channels must be a positive int"),
    Call("model unknown kwarg", lambda: sreconv.create_model("sre_resnet18", widht=4), TypeError, "widht"),
    Call("model sizes length", lambda: sreconv.create_model("sre_resnet18", sre_conv_size=[9, 9, 5]), ValueError,
         "sre_conv_size must be an int or a list of 1 or 4 values"),
    Call("model downsample", lambda: sreconv.create_model("sre_resnet18", downsample="fast"), ValueError,
         "downsample must be one of"),
    Call("model 3d unknown kwarg", lambda: sreconv.create_model("sre_r3d_18", depth=3), TypeError, "depth"),
    Call("model input channels",
         lambda: sreconv.create_model("sre_resnet18", in_channels=1, inplanes=4)(torch.randn(1, 3, 8, 8)),
         ValueError, "in_channels=1 but the input has 3 channels"),
    Call("model input dims", lambda: sreconv.create_model("sre_resnet18", inplanes=4)(torch.randn(3, 8, 8)),
         ValueError, "expects a batch of shape"),
    Call("checkpoint_path missing", lambda: sreconv.create_model("sre_resnet18", checkpoint_path="/nonexistent.pt"),
         FileNotFoundError, "not found"),
]


@pytest.mark.parametrize("case", LIBRARY, ids=[c.name for c in LIBRARY])
def test_library_refuses_bad_arguments(case):
    with pytest.raises(case.error, match=case.match) as info:
        case.call()
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------- commands
@dataclass(frozen=True)
class Cmd:
    name: str
    argv: tuple[str, ...]
    match: str
    status: int = 2


# {out}: a folder that must not be created; {run}: a finished tiny run; {files}: the fixture folder below.
TRAIN = [
    Cmd("unknown dataset", ("train", "--dataset", "nosuchmnist"), "unknown dataset 'nosuchmnist'"),
    Cmd("unknown model", ("train", "--model", "resnet9000"), "unknown model 'resnet9000'"),
    Cmd("epochs 0", ("train", "--epochs", "0"), "--epochs must be a positive integer"),
    Cmd("epochs -3", ("train", "--epochs", "-3"), "--epochs must be a positive integer"),
    Cmd("batch 0", ("train", "-b", "0"), "--batch-size must be a positive integer"),
    Cmd("width 0", ("train", "--width", "0"), "--width must be a positive integer"),
    Cmd("limit-train 0", ("train", "--limit-train", "0"), "--limit-train must be a positive integer"),
    Cmd("eval batch 0", ("train", "--eval-batch-size", "0"), "--eval-batch-size must be a positive integer"),
    Cmd("lr 0", ("train", "--lr", "0"), "--lr must be > 0"),
    Cmd("lr -1", ("train", "--lr", "-1"), "--lr must be > 0"),
    Cmd("lr nan", ("train", "--lr", "nan"), "--lr must be a finite number"),
    Cmd("lr inf", ("train", "--lr", "inf"), "--lr must be a finite number"),
    Cmd("momentum -1", ("train", "--momentum", "-1"), "--momentum must be >= 0"),
    Cmd("weight decay -1", ("train", "--weight-decay", "-1"), "--weight-decay must be >= 0"),
    Cmd("min lr nan", ("train", "--min-lr", "nan"), "--min-lr must be a finite number"),
    Cmd("warmup -1", ("train", "--warmup-epochs", "-1"), "--warmup-epochs must be an integer >= 0"),
    Cmd("workers -1", ("train", "--num-workers", "-1"), "--num-workers must be an integer >= 0"),
    Cmd("seed -1", ("train", "--seed", "-1"), "--seed must be an integer >= 0"),
    Cmd("flip p 1.5", ("train", "--train-flip-p", "1.5"), "--train-flip-p must be in [0, 1]"),
    Cmd("translate -0.1", ("train", "--translate-ratio", "-0.1"), "--translate-ratio must be >= 0"),
    Cmd("val fraction 2", ("train", "--val-fraction", "2"), "--val-fraction must be in (0, 1)"),
    Cmd("val fraction 0", ("train", "--val-fraction", "0"), "--val-fraction must be in (0, 1)"),
    Cmd("val fraction nan", ("train", "--val-fraction", "nan"), "--val-fraction must be a finite number"),
    Cmd("eval angle inf", ("train", "--eval-angles", "0", "inf"), "--eval-angles must be finite numbers"),
    Cmd("eval angle nan", ("train", "--eval-angles", "nan"), "--eval-angles must be finite numbers"),
    Cmd("sre size 0", ("train", "--sre-conv-size", "0"), "--sre-conv-size must hold positive integers"),
    Cmd("sre k 0", ("train", "--sre-k", "0"), "--sre-k must hold positive integers"),
    Cmd("milestones 0", ("train", "--milestones", "0"), "--milestones must hold positive integers"),
    Cmd("sgd and adam", ("train", "--sgd", "--adam"), "argument --adam: not allowed with argument --sgd"),
    Cmd("optimizer and adamw", ("train", "--optimizer", "sgd", "--adamw"), "not allowed with argument"),
    Cmd("cos and step", ("train", "--cos", "--step"), "argument --step: not allowed with argument --cos"),
    Cmd("amp and bf16", ("train", "--amp", "fp16", "--bf16"), "not allowed with argument"),
    Cmd("bad optimizer", ("train", "--optimizer", "lbfgs"), "invalid choice: 'lbfgs'"),
    Cmd("bad int", ("train", "--epochs", "three"), "invalid int value: 'three'"),
    Cmd("bad axis", ("train", "--eval-axes", "w"), "invalid choice: 'w'"),
    Cmd("amp fp16 on cpu", ("train", "--amp", "fp16", "--device", "cpu"), "--amp fp16 needs a CUDA device"),
    Cmd("bare amp on cpu", ("train", "--amp", "--device", "cpu"), "--amp fp16 needs a CUDA device"),
    Cmd("eval axes on 2D", ("train", "--eval-axes", "x"), "--eval-axes applies to 3D data only"),
    Cmd("3D model on 2D data", ("train", "--model", "sre_r3d_18"), "is 3D but dataset 'mnist5k' is 2D"),
    Cmd("2D model on 3D data", ("train", "--dataset", "organmnist3d", "--model", "sre_resnet18"),
        "is 2D but dataset 'organmnist3d' is 3D"),
    Cmd("image size on 3D", ("train", "--dataset", "organmnist3d", "--model", "sre_r3d_18", "--image-size", "32"),
        "--image-size applies to 2D data only"),
    Cmd("any rotation on 3D", ("train", "--dataset", "organmnist3d", "--model", "sre_r3d_18", "--train-rot", "any"),
        "--train-rot any is 2D only"),
    Cmd("resume missing", ("train", "--resume", "{out}"), "config.yaml not found"),
    Cmd("resume without folder", ("train", "--resume"), "--resume needs the run's folder"),
    Cmd("resume with other out", ("train", "--resume", "{run}", "--out", "{out}"), "conflicts with --resume"),
    Cmd("resume with config", ("train", "--resume", "{run}", "--config", "{files}/good.yaml"),
        "--config cannot be combined with --resume"),
    Cmd("resume model change", ("train", "--resume", "{run}", "--model", "sre_resnet34"),
        "--model 'sre_resnet18' -> 'sre_resnet34'"),
    Cmd("resume lr change", ("train", "--resume", "{run}", "--lr", "1.0"), "--lr 0.05 -> 1.0"),
    Cmd("resume fewer epochs", ("train", "--resume", "{run}", "--epochs", "1"), "is fewer than the 2 epochs"),
    Cmd("out holds a run", ("train", "--out", "{run}", "--epochs", "1"), "already holds a run"),
    Cmd("config missing", ("train", "--config", "/nonexistent/c.yaml"), "config file /nonexistent/c.yaml not found"),
    Cmd("config folder", ("train", "--config", "{files}"), "is a folder, not a file"),
    Cmd("config not yaml", ("train", "--config", "{files}/bad.yaml"), "is not valid YAML"),
    Cmd("config a list", ("train", "--config", "{files}/list.yaml"), "must hold a mapping of settings"),
    Cmd("config unknown key", ("train", "--config", "{files}/typo.yaml"), "did you mean 'epochs'"),
    Cmd("config binary", ("train", "--config", "{files}/evil.pt"), "is not valid YAML"),
    Cmd("device cuda", ("train", "--device", "cuda"), "no CUDA device is available"),
    Cmd("corrupt npz", ("train", "--dataset", "pathmnist", "--data-root", "{files}/corrupt"), "pathmnist.npz"),
    Cmd("missing medmnist", ("train", "--dataset", "dermamnist", "--data-root", "{files}/empty"), "dermamnist"),
    Cmd("medmnist size", ("train", "--dataset", "pathmnist", "--medmnist-size", "100"), "100"),
    Cmd("fashion missing", ("train", "--dataset", "fashion-mnist", "--data-root", "{files}/empty"), "fashion"),
    Cmd("fashion truncated", ("train", "--dataset", "fashion-mnist", "--data-root", "{files}/truncated"),
        "truncated"),
    Cmd("one-class folder", ("train", "--dataset", "folder", "--data-root", "{files}/oneclass"),
        "classification needs at least two"),
    Cmd("folder missing", ("train", "--dataset", "folder", "--data-root", "{files}/nope"), "nope"),
    Cmd("download non-medmnist", ("train", "--download"), "download=True is only supported for MedMNIST"),
    Cmd("val fraction on medmnist", ("train", "--dataset", "pathmnist", "--val-fraction", "0.2",
                                     "--data-root", "{files}/med"), "MedMNIST has an official validation split"),
]

EVAL = [
    Cmd("nothing given", ("eval",), "give --out DIR"),
    Cmd("checkpoint missing", ("eval", "--checkpoint", "/nonexistent/x.pt"), "checkpoint /nonexistent/x.pt not found"),
    Cmd("checkpoint folder", ("eval", "--checkpoint", "{files}"), "is a folder, not a file"),
    Cmd("run without checkpoints", ("eval", "--out", "{files}/empty"), "no checkpoint in"),
    Cmd("run missing", ("eval", "--out", "{out}"), "not found"),
    Cmd("garbage checkpoint", ("eval", "--checkpoint", "{files}/garbage.pt"), "is unreadable"),
    Cmd("planted pickle", ("eval", "--checkpoint", "{files}/evil.pt"), "needs arbitrary code to load"),
    Cmd("no settings", ("eval", "--checkpoint", "{files}/bare.pt"), "holds no settings"),
    Cmd("wrong model", ("eval", "--checkpoint", "{files}/bare.pt", "--dataset", "mnist5k", "--model",
                        "sre_resnet34"), "does not fit model 'sre_resnet34'"),
    Cmd("bad split", ("eval", "--out", "{run}", "--split", "train"), "invalid choice: 'train'"),
    Cmd("eval angle inf", ("eval", "--out", "{run}", "--eval-angles", "inf"), "--eval-angles must be finite"),
    Cmd("eval axes on 2D", ("eval", "--out", "{run}", "--eval-axes", "z"), "--eval-axes applies to 3D data only"),
    Cmd("wrong channels", ("eval", "--out", "{run}", "--no-res-keep-conv1"), "does not fit"),
]

CHECK = [
    Cmd("unknown name", ("check", "sre_resnet_18"), "neither a registered model nor a file"),
    Cmd("garbage file", ("check", "{files}/garbage.pt"), "is unreadable"),
    Cmd("folder", ("check", "{files}"), "is a folder, not a file"),
    Cmd("planted pickle", ("check", "{files}/evil.pt"), "needs arbitrary code to load"),
    Cmd("a tensor", ("check", "{files}/tensor.pt"), "holds a Tensor"),
    Cmd("anonymous state dict", ("check", "{files}/bare.pt"), "pass --model NAME"),
    Cmd("input shape one number", ("check", "sre_resnet18", "--input-shape", "3"), "--input-shape must be C and"),
    Cmd("input shape zero", ("check", "sre_resnet18", "--input-shape", "3", "0", "9"), "--input-shape must be C and"),
    Cmd("size 0", ("check", "sre_resnet18", "--size", "0"), "--size must be a positive integer"),
    Cmd("cube on 2D", ("check", "sre_resnet18", "--group", "cube"), "--group cube acts on 3D inputs"),
    Cmd("d4 on 3D", ("check", "sre_r3d_18", "--group", "d4"), "--group d4 acts on 2D inputs"),
    Cmd("bad kw", ("check", "sre_resnet18", "--kw", "inplanes"), "--kw expects KEY=VALUE"),
    Cmd("kw breaks model", ("check", "sre_resnet18", "--kw", "sre_conv_size=[9,9,5]"), "cannot build"),
    Cmd("tol 0", ("check", "sre_resnet18", "--tol", "0"), "--tol must be > 0"),
    Cmd("kw on pickled model", ("check", "{files}/bare.pt", "--model", "sre_resnet34"), "does not fit"),
]

VIZ = [
    Cmd("cam without run", ("cam",), "give --run DIR"),
    Cmd("cam missing run", ("cam", "--run", "{out}"), "not found"),
    Cmd("cam index", ("cam", "--run", "{run}", "--index", "99999"), "index 99999 out of range"),
    Cmd("cam planted pickle", ("cam", "--checkpoint", "{files}/evil.pt"), "needs arbitrary code to load"),
    Cmd("gif frames", ("gif", "--run", "{run}", "--frames", "1"), "--frames must be at least 2"),
    Cmd("kernels planted pickle", ("kernels", "{files}/evil.pt"), "needs arbitrary code to load"),
    Cmd("kernels channels", ("kernels", "{run}", "--channels", "0"), "--channels must be >= 1"),
    Cmd("plot missing", ("plot", "{files}/missing.json"), "not found"),
    Cmd("plot garbage", ("plot", "{files}/bad.yaml"), "not valid JSON"),
    Cmd("report missing", ("report", "{out}", "-o", "{files}/r.html"), "not found"),
    Cmd("models no match", ("models", "zzz*"), "no registered model matches"),
]


class _Planted:
    """Unpickling this runs ``touch MARKER``: the reproduction of the issue's checkpoint exploit."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    (root / "good.yaml").write_text("epochs: 1\n")
    (root / "bad.yaml").write_text("epochs: [1, 2\n")
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "typo.yaml").write_text("epoch: 3\n")
    (root / "garbage.pt").write_bytes(b"this is not a checkpoint" * 10)
    torch.save({"model": _Planted(str(root / "PWNED"))}, root / "evil.pt")
    torch.save(torch.ones(3), root / "tensor.pt")
    model = sreconv.create_model("sre_resnet18", num_classes=10, in_channels=1, inplanes=4, sre_conv_size=[3],
                                 skip_first_maxpool=True)
    torch.save(model.state_dict(), root / "bare.pt")
    (root / "empty").mkdir()
    (root / "corrupt").mkdir()
    (root / "corrupt" / "pathmnist.npz").write_bytes(b"PK\x03\x04 not a zip archive")
    write_medmnist(root / "med", "pathmnist")
    paths = write_fashion(root / "truncated", n_train=20, n_test=10)
    train_images = paths["train-images"]
    with open(train_images, "r+b") as f:
        f.truncate(100)
    write_folder(root / "oneclass", classes=("only",), per_class=6)
    return root


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile_run") / "run"
    argv = ["train", "--dataset", "mnist5k", "--width", "4", "--sre-conv-size", "3", "--res-keep-conv1",
            "--epochs", "2", "-b", "16", "--lr", "0.05", "--limit-train", "32", "--limit-val", "16",
            "--limit-test", "16", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    return out


def _fill(argv, out, run, files):
    return [a.replace("{out}", str(out)).replace("{run}", str(run)).replace("{files}", str(files)) for a in argv]


def _snapshot(folder):
    return {os.path.join(r, n): os.path.getmtime(os.path.join(r, n)) for r, _, ns in os.walk(folder) for n in ns
            if n != ".lock"}


COMMANDS = TRAIN + EVAL + CHECK + VIZ


def test_there_are_at_least_100_cases():
    assert len(LIBRARY) + len(COMMANDS) >= 100


@pytest.mark.parametrize("case", COMMANDS, ids=[f"{c.argv[0]}: {c.name}" for c in COMMANDS])
def test_command_refuses_with_one_line(case, files, finished, tmp_path, capsys):
    out = tmp_path / "must-not-exist"
    argv = _fill(case.argv, out, finished, files)
    before = _snapshot(finished)
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors: usage line + error line, status 2
        status = exc.code
        err = capsys.readouterr().err.strip().splitlines()[-1]
    else:
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        err = lines[0]
        assert err.startswith(f"sreconv {case.argv[0]}: error: "), err
    assert status == case.status
    assert case.match in err, err
    assert "Traceback" not in err
    assert not out.exists()
    assert _snapshot(finished) == before  # nothing of the finished run was rewritten
    assert not (files / "PWNED").exists()  # and nothing planted ran


def test_planted_pickle_in_a_run_folder_is_not_run(finished, files, tmp_path, capsys):
    """A run folder whose last.pt was replaced by a planted pickle: resume refuses it, nothing runs."""
    import shutil

    run = tmp_path / "tampered"
    shutil.copytree(finished, run)
    shutil.copy(files / "evil.pt", run / "checkpoints" / "last.pt")
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 2
    assert "needs arbitrary code to load" in capsys.readouterr().err
    assert not (files / "PWNED").exists()


@pytest.mark.slow
def test_two_trainings_into_one_folder(tmp_path):
    """While one run trains into a folder, a second run into it is refused at once; the first is unharmed."""
    import json
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "shared"
    argv = [sys.executable, "-m", "sreconv", "train", "--dataset", "mnist5k", "--width", "4", "--sre-conv-size", "3",
            "--res-keep-conv1", "--epochs", "500", "-b", "16", "--limit-train", "32", "--limit-val", "16",
            "--limit-test", "16", "--no-progress", "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 240
        while not (out / "log.jsonl").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.2)
        second = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=240)
        assert first.poll() is None, "the first run should still be training"
        assert second.returncode == 2 and "is in use by another sreconv process (pid" in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "continue with sreconv train --resume" in err
    epochs = [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, len(epochs) + 1))  # one writer: no duplicated or interleaved epochs
