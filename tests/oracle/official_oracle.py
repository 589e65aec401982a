"""Run the official ``SRE-Conv`` 1.0.2 package as a test oracle.

This script is meant to be run in a subprocess, never imported by the test
suite itself: the official package and ours both provide a top-level module
named ``SRE_Conv``, so the official install directory must come first on
``sys.path``. Usage::

    python official_oracle.py OFFICIAL_DIR SPEC_JSON OUT_PT

``SPEC_JSON`` is a JSON string, or ``-`` to read it from stdin. Spec fields:

* ``kind``: ``"layer"``, ``"model"`` or ``"ring_masks"``.
* ``cls`` (layer): class name in ``SRE_Conv``, e.g. ``"SRE_Conv2d"``.
* ``name`` (model): factory name, e.g. ``"sre_resnet18"`` or ``"sre_r3d_18"``.
* ``kwargs``: constructor / factory keyword arguments.
* ``force_circular`` (layer, default true): false builds the non-circular
  variant, which the official subclasses cannot reach through their own
  arguments.
* ``seed`` (default 0): ``torch.manual_seed`` before construction; the input
  is drawn from a separate generator seeded with ``seed + 1``.
* ``input_shape``: shape of the random normal input, or ``input_path``: a
  ``.pt`` file holding the input tensor.
* ``state_dict_path`` (optional): ``.pt`` state dict loaded after construction.
* ``warmup_steps`` (default 0): training-mode forwards (no gradient) run on the
  input before anything is recorded; batch-norm running statistics are reset
  and become the plain average over them, so eval outputs stay O(1).
* ``dtype`` (default ``"float64"``): ``"float32"`` or ``"float64"``; the module
  is converted with ``.to(dtype)`` after construction (passing ``dtype=`` to the
  official constructors breaks its training-mode forward).
* ``configs`` (ring_masks): list of ``{"dim", "kernel_size", "sre_k",
  "force_circular", "key"}``; 1D masks are taken from the 2D code path with a
  ``(k, 1)`` kernel because the official ``SRE_Conv1d`` cannot be constructed.

The output ``.pt`` file holds a dict with ``state_dict`` (after construction,
loading and warm-up, in ``dtype``), ``input``, ``out_eval``, ``out_train`` (eval forward first, so the
train forward sees the initial batch-norm statistics), ``grads`` (gradients of
``out_train.sum()``), ``n_params`` and, for layers, ``dense_kernel`` and
``ring_masks`` (``(R, prod(kernel))``). For ``ring_masks`` it holds
``{"masks": {key: uint8 tensor}, "errors": {key: message}}``.
"""

import contextlib
import importlib
import json
import sys
import types

import torch

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _import_official(official_dir):
    """Import the official ``SRE_Conv`` from ``official_dir``.

    ``SRE_Conv.transforms`` imports ``torchio`` at import time but nothing the
    layers or models use needs it, so an empty stand-in module is installed
    when ``torchio`` is not available.

    Args:
        official_dir: Directory holding the official ``SRE_Conv`` package.

    Returns:
        The imported official ``SRE_Conv`` module.
    """
    sys.path.insert(0, official_dir)
    try:
        importlib.import_module("torchio")
    except ImportError:
        sys.modules["torchio"] = types.ModuleType("torchio")
    official = importlib.import_module("SRE_Conv")
    if not official.__file__.startswith(official_dir):
        raise RuntimeError(f"SRE_Conv resolved to {official.__file__}, not to {official_dir}")
    return official


@contextlib.contextmanager
def _non_circular(official):
    """Make every official SRE layer built in this context non-circular.

    The public layer classes never pass ``force_circular`` on to their base
    class, so the base ``__init__`` is wrapped to receive it.

    Args:
        official: The official ``SRE_Conv`` module.

    Yields:
        None.
    """
    base = official.sre_conv._SRE_ConvNd
    original = base.__init__

    def patched(self, *args, **kwargs):
        kwargs["force_circular"] = False
        original(self, *args, **kwargs)

    base.__init__ = patched
    try:
        yield
    finally:
        base.__init__ = original


def _find(official, name):
    """Look a public name up in the official package and its submodules."""
    for module_name in ("SRE_Conv", "SRE_Conv.sre_conv", "SRE_Conv.sre_resnet", "SRE_Conv.sre_resnet_3d"):
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"official SRE_Conv has no {name!r}")


def _ring_masks(official, configs):
    """Compute the official ring masks for a list of kernel configurations.

    Args:
        official: The official ``SRE_Conv`` module.
        configs: Dicts with ``key``, ``dim``, ``kernel_size`` (int or list),
            ``sre_k`` (int or None) and ``force_circular`` (bool).

    Returns:
        ``{"masks": {key: uint8 tensor (R, prod(kernel))}, "errors": {key: str}}``.
    """
    classes = {1: official.SRE_Conv2d, 2: official.SRE_Conv2d, 3: official.SRE_Conv3d}
    masks, errors = {}, {}
    for config in configs:
        dim, kernel = config["dim"], config["kernel_size"]
        if dim == 1:
            kernel = (kernel if isinstance(kernel, int) else kernel[0], 1)
        circular = config.get("force_circular", True)
        try:
            with contextlib.nullcontext() if circular else _non_circular(official):
                layer = classes[dim](1, 1, kernel, sre_k=config.get("sre_k"), bias=False)
            mat = layer.weight_index_mat
            masks[config["key"]] = mat.reshape(mat.shape[-2], mat.shape[-1]).to(torch.uint8).clone()
        except Exception as exc:  # noqa: BLE001 - the error is part of the record
            errors[config["key"]] = f"{type(exc).__name__}: {exc}"
    return {"masks": masks, "errors": errors}


def _build(official, spec):
    """Build the layer or model described by ``spec`` with its seed."""
    torch.manual_seed(spec.get("seed", 0))
    kwargs = spec.get("kwargs", {})
    if spec["kind"] == "layer":
        cls = _find(official, spec["cls"])
        circular = spec.get("force_circular", True)
        with contextlib.nullcontext() if circular else _non_circular(official):
            return cls(**kwargs)
    return _find(official, spec["name"])(**kwargs)


def _warm_up(module, x, steps):
    """Set batch-norm running statistics to their average over ``steps`` forwards."""
    if steps <= 0:
        return
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average
    with torch.no_grad():
        for _ in range(steps):
            module(x.clone())
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum


def run(official_dir, spec):
    """Build, run and record one official layer or model.

    Args:
        official_dir: Directory holding the official ``SRE_Conv`` package.
        spec: The spec dict described in the module docstring.

    Returns:
        The result dict described in the module docstring.
    """
    official = _import_official(official_dir)
    if spec["kind"] == "ring_masks":
        return _ring_masks(official, spec["configs"])

    module = _build(official, spec)
    if spec.get("state_dict_path"):
        module.load_state_dict(torch.load(spec["state_dict_path"], map_location="cpu"))

    dtype = _DTYPES[spec.get("dtype", "float64")]
    module = module.to(dtype)
    if spec.get("input_path"):
        x = torch.load(spec["input_path"], map_location="cpu").to(dtype)
    else:
        generator = torch.Generator().manual_seed(spec.get("seed", 0) + 1)
        x = torch.randn(spec["input_shape"], generator=generator, dtype=dtype)
    module.train()
    _warm_up(module, x, spec.get("warmup_steps", 0))

    result = {
        "state_dict": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "input": x,
        "n_params": sum(p.numel() for p in module.parameters()),
    }
    # eval() refreshes the official cached dense kernels, so it must follow the
    # dtype conversion and any state-dict loading.
    module.eval()
    with torch.no_grad():
        result["out_eval"] = module(x.clone()).detach()
    module.train()
    out_train = module(x.clone())
    out_train.sum().backward()
    result["out_train"] = out_train.detach()
    result["grads"] = {k: p.grad.detach().clone() for k, p in module.named_parameters() if p.grad is not None}
    if spec["kind"] == "layer":
        with torch.no_grad():
            result["dense_kernel"] = module._make_conv_weight(module.weight).detach().clone()
        mat = module.weight_index_mat
        result["ring_masks"] = mat.reshape(mat.shape[-2], mat.shape[-1]).to(torch.uint8).clone()
    return result


def main(argv):
    """Command-line entry point: ``OFFICIAL_DIR SPEC_JSON|- OUT_PT``."""
    if len(argv) != 4:
        raise SystemExit(__doc__)
    official_dir, spec_text, out_path = argv[1:]
    spec = json.loads(sys.stdin.read() if spec_text == "-" else spec_text)
    torch.save(run(official_dir, spec), out_path)


if __name__ == "__main__":
    main(sys.argv)
