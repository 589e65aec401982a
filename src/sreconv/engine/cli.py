"""The ``train`` and ``eval`` subcommands of the ``sreconv`` console script.

``register(subparsers)`` adds both to an ``argparse`` sub-parser set (``sreconv.cli`` calls it); each parser
sets ``func`` to a handler ``func(args) -> exit code``. ``main(argv)`` runs them stand-alone.

Every flag defaults to "not given" so precedence is exact: built-in defaults < saved ``config.yaml`` of the
run being resumed < ``--quickstart`` preset (implied when ``sreconv train`` gets no ``--dataset``/``--med-mnist``,
``--config`` or ``--resume``) < ``--config file.yaml`` < flags. Flags of the official ``main.py`` are accepted
under their names (``--med-mnist``, ``--model-type``, ``--sre-conv-size-list``, ``--res-inplanes``, ``--sgd``,
``--cos``,
``--amp``/``--bf16``, ...). Errors print one line ``sreconv <cmd>: error: ...`` and exit with status 1
(2 for malformed flags, as argparse); set ``SRECONV_DEBUG=1`` to get the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .config import AMP_MODES, OPTIMIZERS, QUICKSTART, SCHEDULES, TRAIN_ROTATIONS, TrainConfig, load_yaml

S = argparse.SUPPRESS
BOOL = argparse.BooleanOptionalAction
META_KEYS = ("func", "_func", "command", "config", "quickstart", "checkpoint", "split", "results")


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", metavar="NAME", help="dataset name: a MedMNIST flag, mnist5k, fashion-mnist or "
                   "folder (default mnist5k)")
    g.add_argument("--med-mnist", dest="dataset", metavar="FLAG", help="official name of --dataset")
    g.add_argument("--data-root", metavar="DIR", help="folder of the dataset files")
    g.add_argument("--medmnist-size", type=int, metavar="N", help="MedMNIST file variant: 28, 64, 128, 224")
    g.add_argument("--image-size", type=int, metavar="N",
                   help="resize 2D images to N (default: 32 for 28-pixel MedMNIST as the paper, else native)")
    g.add_argument("--limit-test", type=int, metavar="N", help="use a fixed random subset of N test images")


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", metavar="NAME", help="registry name (sreconv.models.list_models()); "
                   "default sre_resnet18")
    g.add_argument("--model-type", dest="model", metavar="NAME", help="official name of --model")
    g.add_argument("--sre-conv-size-list", "--ri-conv-size-list", dest="sre_conv_size", type=int, nargs="+",
                   metavar="K", help="SRE kernel size per stage (default 9 9 5 5)")
    g.add_argument("--sre-k", "--sre-conv-k", dest="sre_k", type=int, nargs="+", metavar="R",
                   help="rings per stage (default k//2+1)")
    g.add_argument("--width", "--res-inplanes", dest="width", type=int, metavar="C",
                   help="channels of the stem and first stage (default 64)")
    g.add_argument("--res-keep-conv1", action=BOOL,
                   help="stem takes the data's channel count; without it gray images are repeated to 3 "
                        "channels, as the official stem always took 3")


def _add_eval_flags(p: argparse.ArgumentParser, default_on: bool) -> None:
    g = p.add_argument_group("evaluation")
    on = " (default on)" if default_on else ""
    g.add_argument("--eval-rot", action=BOOL, help=f"evaluate the test set rotated by each angle{on}")
    g.add_argument("--eval-flip", action=BOOL, help=f"evaluate the test set flipped{on}")
    g.add_argument("--eval-angles", type=float, nargs="+", metavar="DEG",
                   help="rotation angles (default 0..350 step 10 in 2D, 0..330 step 30 in 3D)")
    g.add_argument("--eval-axes", nargs="+", choices=["x", "y", "z"], help="3D rotation axes (default x y z)")
    g.add_argument("--eval-mask", action=BOOL, help="mask all test images to their inscribed disc/ball")
    g.add_argument("--eval-batch-size", "--test-batch-size", dest="eval_batch_size", type=int, metavar="N",
                   help="evaluation batch size (default 256)")


def _add_runtime_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("runtime")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default auto (CUDA if available)")
    g.add_argument("--num-workers", type=int, metavar="N", help="data loader workers (default 0)")
    g.add_argument("--progress", action=BOOL, help="tqdm progress bars (default on)")
    g.add_argument("--amp", nargs="?", const="fp16", choices=AMP_MODES,
                   help="mixed precision on CUDA: fp16 (the default when given alone) or bf16")
    g.add_argument("--bf16", dest="amp", action="store_const", const="bf16", help="same as --amp bf16")
    g.add_argument("--deterministic", action=BOOL, help="deterministic algorithms (bit-exact resume)")
    g.add_argument("--cudnn", action=BOOL, help="official flag: set cudnn.benchmark (ignored with "
                   "--deterministic)")


def build_train_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.argument_default = S
    p.add_argument("--config", metavar="FILE.yaml", help="settings file (keys as the long flags); flags override it")
    p.add_argument("--quickstart", action="store_true",
                   help="start from the quick-start preset (a width-16 SRE-ResNet-18, 15 epochs on MNIST-5k, "
                        "rotation sweep); implied when no --dataset, --config or --resume is given")
    _add_data_flags(p)
    g = p._action_groups[-1]
    g.add_argument("--val-fraction", type=float, metavar="F",
                   help="validation fraction for datasets without a validation split")
    g.add_argument("--download", action=BOOL, help="let medmnist download missing files")
    g.add_argument("--limit-train", type=int, metavar="N", help="use a fixed random subset of N training images")
    g.add_argument("--limit-val", type=int, metavar="N", help="use a fixed random subset of N validation images")
    _add_model_flags(p)
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, metavar="N", help="default 100")
    g.add_argument("-b", "--batch-size", type=int, metavar="N", help="per-process batch size (default 128)")
    g.add_argument("--lr", type=float, metavar="LR", help="base learning rate (default 2e-2)")
    g.add_argument("--momentum", type=float, metavar="M", help="SGD momentum (default 0.9)")
    g.add_argument("--weight-decay", type=float, metavar="WD", help="default 1e-3 (official default)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="default sgd")
    g.add_argument("--sgd", dest="optimizer", action="store_const", const="sgd", help="--optimizer sgd")
    g.add_argument("--adamw", "--adamW", dest="optimizer", action="store_const", const="adamw",
                   help="--optimizer adamw")
    g.add_argument("--adam", dest="optimizer", action="store_const", const="adam", help="--optimizer adam")
    g.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule (default cos)")
    g.add_argument("--cos", dest="schedule", action="store_const", const="cos", help="--schedule cos")
    g.add_argument("--step", dest="schedule", action="store_const", const="step", help="--schedule step")
    g.add_argument("--multi-step", dest="schedule", action="store_const", const="multi-step",
                   help="--schedule multi-step")
    g.add_argument("--min-lr", type=float, metavar="LR", help="final lr of the cosine schedule (default 1e-6)")
    g.add_argument("--warmup-epochs", type=int, metavar="N", help="linear warm-up epochs (default 0)")
    g.add_argument("--step-size", type=int, metavar="N", help="epochs between decays of --step (default 30)")
    g.add_argument("--gamma", type=float, metavar="G", help="decay factor of --step/--multi-step (default 0.1)")
    g.add_argument("--milestones", type=int, nargs="+", metavar="E", help="epochs of --multi-step decays")
    g = p.add_argument_group("augmentation")
    g.add_argument("--moco-aug", action=BOOL, help="2D: random resized crop + colour jitter; 3D: random "
                   "affine + blur (the paper's augmentations)")
    g.add_argument("--translation", action=BOOL, help="2D random translation by --translate-ratio")
    g.add_argument("--translate-ratio", type=float, metavar="F", help="default 0.2 (official default)")
    g.add_argument("--train-flip-p", type=float, metavar="P",
                   help="probability of random horizontal and vertical flips (default 0.5, official default)")
    g.add_argument("--train-rot", dest="train_rotation", choices=TRAIN_ROTATIONS,
                   help="random rotation of every training image: 'any' angle (2D, bilinear) or a quarter turn "
                        "('rot90'); default none")
    _add_runtime_flags(p)
    g = p._action_groups[-1]
    g.add_argument("--seed", type=int, metavar="S", help="default 1")
    g.add_argument("--log", action=BOOL, help="official flag: also write steps.jsonl (loss and lr per step)")
    _add_eval_flags(p, default_on=False)
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="output folder (default runs/<dataset>-<model>-<time>)")
    g.add_argument("--save-model", action=BOOL, help="write the evaluated weights to DIR/model.pt")
    g.add_argument("--save-best", action=BOOL, help="keep checkpoints/best.pt (best validation accuracy) "
                   "and evaluate it instead of the last epoch")
    g.add_argument("--resume", nargs="?", const=True, metavar="DIR",
                   help="continue the run in DIR (or --out) from checkpoints/last.pt")
    p.set_defaults(func=train_command)
    return p


def build_eval_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.argument_default = S
    p.add_argument("--out", metavar="DIR", help="a training output folder: evaluates checkpoints/best.pt if "
                   "present, else last.pt, and writes DIR/eval.json")
    p.add_argument("--checkpoint", metavar="FILE.pt", help="checkpoint to evaluate (training checkpoint, bare "
                   "state_dict or official {'state_dict'} file)")
    p.add_argument("--config", metavar="FILE.yaml", help="settings (needed when the checkpoint has none)")
    p.add_argument("--split", choices=["test", "val"], help="split to evaluate (default test)")
    p.add_argument("--results", metavar="FILE.json", help="where to write the results (default DIR/eval.json)")
    _add_data_flags(p)
    _add_model_flags(p)
    _add_runtime_flags(p)
    _add_eval_flags(p, default_on=True)
    p.set_defaults(func=eval_command)
    return p


def register(subparsers) -> None:
    """Adds ``train`` and ``eval`` to an ``ArgumentParser.add_subparsers()`` object."""
    build_train_parser(subparsers.add_parser(
        "train", help="train a model and evaluate it under rotations and flips",
        description="Train a classifier (default: SRE-ResNet-18) and evaluate it on the test set, upright, "
                    "rotated and flipped. Without --dataset: the quick start on MNIST-5k."))
    build_eval_parser(subparsers.add_parser(
        "eval", help="evaluate a checkpoint under rotations and flips",
        description="Evaluate a trained checkpoint on the test (or val) set, upright, rotated and flipped."))


def _explicit(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in META_KEYS}


def resolve_train_config(args: argparse.Namespace) -> TrainConfig:
    """The run's config from parsed ``train`` flags (see the module docstring for precedence)."""
    flags = _explicit(args)
    resume = flags.pop("resume", None)
    values: dict[str, Any] = {}
    if resume:
        out = resume if isinstance(resume, str) else flags.get("out")
        if not out:
            raise ValueError("--resume needs the run's folder: --resume DIR or --out DIR --resume")
        flags["out"] = out
        saved = os.path.join(out, "config.yaml")
        if not os.path.isfile(saved):
            raise FileNotFoundError(f"--resume: {saved} not found; is {out} a sreconv output folder?")
        values.update(load_yaml(saved))
    # Without a dataset (nor a config file or run to resume) the run is the quick start on MNIST-5k; the
    # other flags still apply on top, e.g. `sreconv train --epochs 1` is a shortened quick start.
    implicit = "dataset" not in flags and not resume and getattr(args, "config", None) is None
    if getattr(args, "quickstart", False) or implicit:
        values.update(QUICKSTART)
    if getattr(args, "config", None):
        values.update(load_yaml(args.config))
    values.update(flags)
    config = TrainConfig.from_dict(values, "settings")
    config.resume = bool(resume)
    return config.validate()


def resolve_eval_config(args: argparse.Namespace):
    """``(config, checkpoint path, split, results path)`` for ``sreconv eval``."""
    from .checkpoint import load_checkpoint

    flags = _explicit(args)
    out = flags.pop("out", None)
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint is None:
        if out is None:
            raise ValueError("give --out DIR (a training output folder) or --checkpoint FILE.pt")
        for name in ("best.pt", "last.pt"):
            path = os.path.join(out, "checkpoints", name)
            if os.path.isfile(path):
                checkpoint = path
                break
        else:
            raise FileNotFoundError(f"no checkpoint in {os.path.join(out, 'checkpoints')}")
    values: dict[str, Any] = {}
    ckpt = load_checkpoint(checkpoint)
    if isinstance(ckpt, dict) and isinstance(ckpt.get("config"), dict):
        values.update(ckpt["config"])
    elif out and os.path.isfile(os.path.join(out, "config.yaml")):
        values.update(load_yaml(os.path.join(out, "config.yaml")))
    if getattr(args, "config", None):
        values.update(load_yaml(args.config))
    values.update({"eval_rot": True, "eval_flip": True, "resume": False})
    values.update(flags)
    config = TrainConfig.from_dict(values, "settings")
    results = getattr(args, "results", None) or (os.path.join(out, "eval.json") if out else None)
    return config.validate(), checkpoint, getattr(args, "split", "test"), results


def _fail(command: str, err: BaseException) -> int:
    if os.environ.get("SRECONV_DEBUG"):
        raise err
    message = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, KeyError):
        message = f"missing key {message}"
    print(f"sreconv {command}: error: {message}", file=sys.stderr, flush=True)
    return 1


_ERRORS = (ValueError, TypeError, KeyError, OSError, ImportError, RuntimeError)


def train_command(args: argparse.Namespace) -> int:
    try:
        from .runner import run_train

        run_train(resolve_train_config(args))
    except KeyboardInterrupt:
        print("sreconv train: interrupted; continue with --resume", file=sys.stderr)
        return 130
    except _ERRORS as err:
        return _fail("train", err)
    return 0


def eval_command(args: argparse.Namespace) -> int:
    try:
        from .runner import run_eval

        config, checkpoint, split, results = resolve_eval_config(args)
        run_eval(config, checkpoint, split, results)
    except KeyboardInterrupt:
        return 130
    except _ERRORS as err:
        return _fail("eval", err)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m sreconv.engine.cli {train,eval} ...``."""
    parser = argparse.ArgumentParser(prog="sreconv")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
