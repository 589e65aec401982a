"""``sreconv check``: is a model exactly equivariant/invariant under the grid symmetries? Names the first layer
that is not (exit status 1).

The target is a registry name (built with ``--kw KEY=VALUE`` arguments), a checkpoint written by ``sreconv
train`` (model and arguments from the settings inside it), an official ``SRE_Conv`` checkpoint or a bare
state_dict (``--model NAME``; sizes, rings and widths read off the weights), or -- with ``--trust-checkpoint``
-- a pickled ``nn.Module``.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

HELP = ("check that a model is exactly equivariant/invariant under the grid symmetries and name the first layer "
        "that is not (exit status 1)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sreconv.groups import GROUPS

    parser.add_argument("target", help="registered model name (see 'sreconv models') or a checkpoint file (.pt): a "
                                       "sreconv training checkpoint, a state_dict, an official {'state_dict'} file, "
                                       "or a pickled model (needs --trust-checkpoint)")
    parser.add_argument("--model", help="registry name of the checkpoint's model when the file does not say")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a checkpoint that needs arbitrary code to load (a pickled model); only for "
                             "files you trust")
    parser.add_argument("--kw", action="append", default=[], metavar="KEY=VALUE",
                        help="model argument (JSON value), e.g. --kw num_classes=9 --kw 'sre_conv_size=[9,9,5,5]'")
    parser.add_argument("--input-shape", type=int, nargs="+", metavar="N",
                        help="input shape (C, *spatial); default: the model's in_channels and --size")
    parser.add_argument("--size", type=int, help="spatial size (default 33 in 2D, 15 in 3D)")
    parser.add_argument("--group", choices=sorted(GROUPS),
                        help="d4 (2D: rotations by 90° and flips), d2 (2D: flips and the half turn), cube (3D: all 48 "
                             "symmetries), plane (3D: D4 on the H-W axes, for videos and anisotropic volumes), flip "
                             "(1D); default: the full group of the model's dimensionality")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--tol", type=float,
                        help="deviation counted as broken (default 1e-8 float64, 1e-4 float32)")
    parser.add_argument("--train", action="store_true", help="check in train mode (batch statistics)")
    parser.add_argument("--no-reinit", dest="reinit_zeros", action="store_false",
                        help="report a constant output as it is; by default a copy whose all-zero parameters (a "
                             "zero-initialised head) are re-initialised is checked instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all-layers", action="store_true", help="print every layer's deviation")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", action="store_true", help="print nothing; the exit status tells (0 = pass)")


def _parse_kwargs(pairs: list[str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair or not pair.split("=", 1)[0].strip():
            raise ValueError(f"--kw expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            kwargs[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key.strip()] = value
    return kwargs


def _infer_kwargs(state_dict: dict[str, Any], name: str) -> dict[str, Any]:
    """num_classes, in_channels, width, kernel sizes and rings read off an (official or sreconv) state_dict."""
    kwargs: dict[str, Any] = {}
    if "fc.weight" in state_dict:
        kwargs["num_classes"] = int(state_dict["fc.weight"].shape[0])
    three_d = "r3d" in name
    stem = "stem.0.weight" if three_d else "conv1.weight"
    if stem in state_dict:
        kwargs["in_channels"] = int(state_dict[stem].shape[1])
        kwargs["inplanes"] = int(state_dict[stem].shape[0])
    sizes, rings = [], []
    for stage in range(1, 5):
        conv = f"layer{stage}.0.conv2.0" if three_d else f"layer{stage}.0.conv2"
        weight = state_dict.get(conv + ".weight")
        if weight is None:
            weight = state_dict.get(conv + ".1.weight")  # bottleneck with a stride: conv2 = (pool, conv)
            conv = conv + ".1"
        masks = state_dict.get(conv + ".weight_index_mat")
        if weight is None or weight.dim() != 3 or masks is None:
            return kwargs
        sizes.append(round(masks.shape[-1] ** (1 / (3 if three_d else 2))))
        rings.append(int(weight.shape[-1]))
    kwargs["sre_conv_size"] = sizes
    if not three_d:
        kwargs["sre_k"] = rings
    return kwargs


def _build(name: str, kwargs: dict[str, Any], source: str) -> Any:
    from sreconv.models.registry import create_model

    try:
        return create_model(name, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot build {name!r} with {kwargs}{source}: {exc}") from None


def load_target(args: argparse.Namespace) -> tuple[Any, str]:
    """``(model, label)`` for the ``target`` argument (see the module docstring)."""
    import torch.nn as nn

    from sreconv.models.registry import list_models, model_info
    from sreconv.serialization import load, model_state

    kwargs = _parse_kwargs(args.kw)
    try:
        registered = model_info(args.target).name
    except ValueError:
        registered = None
    if registered is not None:
        return _build(args.target, kwargs, ""), args.target
    if not os.path.exists(args.target):
        raise FileNotFoundError(f"{args.target!r} is neither a registered model nor a file. Models: "
                                f"{', '.join(list_models())}")
    obj = load(args.target, trusted=args.trust_checkpoint)
    if isinstance(obj, nn.Module):
        if kwargs or args.model:
            raise ValueError(f"{args.target} holds a whole model; --model and --kw do not apply")
        return obj, args.target
    if not isinstance(obj, dict):
        raise ValueError(f"{args.target} holds a {type(obj).__name__}, expected a model, a state_dict or a checkpoint")
    state_dict = model_state(obj)
    saved = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    spec = obj.get("model_spec") if isinstance(obj.get("model_spec"), dict) else {}
    name = args.model or spec.get("name") or saved.get("model") or obj.get("model_name") or obj.get("arch")
    if name is None:
        raise ValueError(f"{args.target} does not name its model; pass --model NAME (one of "
                         f"{', '.join(list_models())})")
    build = dict(spec.get("kwargs") or obj.get("model_kwargs") or {})
    if not build:
        build.update(_infer_kwargs(state_dict, name))
    build.update(kwargs)
    model = _build(name, build, f" from {args.target}")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise ValueError(f"{args.target} does not fit {name!r} built with {build}: {first}") from None
    return model, f"{args.target} ({name})"


def _input_shape(args: argparse.Namespace, model: Any, group: str | None) -> tuple[int, ...]:
    from sreconv.groups import GROUPS

    if args.size is not None and args.size < 1:
        raise ValueError(f"--size must be a positive integer, got {args.size}")
    if args.input_shape:
        shape = tuple(args.input_shape)
        if len(shape) < 2 or len(shape) > 4 or min(shape) < 1:
            raise ValueError(f"--input-shape must be C and 1 to 3 positive spatial sizes (e.g. 3 32 32), got "
                             f"{' '.join(map(str, shape))}")
        return shape
    spatial = getattr(model, "spatial_dims", None) or (GROUPS[group] if group else 2)
    size = args.size or (33 if spatial == 2 else 15)
    return (getattr(model, "in_channels", 3), *(size,) * spatial)


def run(args: argparse.Namespace) -> int:
    import torch

    from sreconv.equivariance import check_equivariance, default_group
    from sreconv.groups import GROUPS

    if args.tol is not None and not args.tol > 0:
        raise ValueError(f"--tol must be > 0, got {args.tol}")
    model, label = load_target(args)
    shape = _input_shape(args, model, args.group)
    spatial = len(shape) - 1
    group = args.group or default_group(spatial)
    model_dims = getattr(model, "spatial_dims", None)
    if model_dims is not None and GROUPS[group] != model_dims:
        raise ValueError(f"--group {group} acts on {GROUPS[group]}D inputs but {label} is a {model_dims}D model; "
                         f"use one of {', '.join(g for g, d in GROUPS.items() if d == model_dims)}")
    dtype = {"float64": torch.float64, "float32": torch.float32}[args.dtype]
    report = check_equivariance(model, shape, group, dtype=dtype, train=args.train, tol=args.tol, seed=args.seed,
                                reinit_zeros=args.reinit_zeros)
    if args.json:
        print(json.dumps({"model": label, **report.as_dict()}, indent=2))
    elif not args.quiet:
        print(f"model: {label}")
        print(report.summary(max_layers=None if args.all_layers else 0 if report.passed else 20))
    return 0 if report.passed else 1
