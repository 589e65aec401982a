"""The import boundaries of docs/architecture.md hold: the library core imports nothing of the application,
the application layers import only downwards, and importing the core pulls in no optional package."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

CORE = ("sreconv.nn", "sreconv.groups", "sreconv.equivariance", "sreconv.models", "sreconv.serialization")
APPLICATION = ("sreconv.data", "sreconv.engine", "sreconv.viz", "sreconv.commands", "sreconv.cli", "sreconv_bench")

#: What each layer may import from sreconv (besides itself); see docs/architecture.md.
ALLOWED = {
    "core": CORE,
    "sreconv.data": (),
    "sreconv.engine": CORE + ("sreconv.data",),
    "sreconv.viz": CORE + ("sreconv.data", "sreconv.engine"),
    "sreconv_bench": CORE + ("sreconv.data", "sreconv.engine"),
    "sreconv.demo": CORE + ("sreconv.data",),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every sreconv/sreconv_bench module ``path`` imports, at any depth of the code."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
    return {n for n in found if n.split(".")[0] in ("sreconv", "sreconv_bench")}


def _layer(module: str) -> str | None:
    if module == "sreconv" or any(module == c or module.startswith(c + ".") for c in CORE):
        return "core"
    for name in ALLOWED:
        if module == name or module.startswith(name + "."):
            return name
    return None


def _files():
    return sorted(p for p in SRC.rglob("*.py") if _layer(_module_name(p)) is not None)


@pytest.mark.parametrize("path", _files(), ids=lambda p: _module_name(p))
def test_imports_only_go_downwards(path):
    module = _module_name(path)
    layer = _layer(module)
    own = ("sreconv",) if layer == "core" else (layer,)
    allowed = ALLOWED[layer] + own
    bad = sorted(n for n in _imports(path)
                 if n != "sreconv" and not any(n == a or n.startswith(a + ".") for a in allowed))
    assert not bad, f"{module} ({layer}) imports {bad}"


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}; import sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return set(json.loads(out))


@pytest.mark.slow
def test_importing_the_core_loads_no_application_module_and_no_optional_package():
    baseline = _loaded_after("import torch, numpy")
    loaded = _loaded_after("import sreconv, sreconv.nn, sreconv.models, sreconv.equivariance, sreconv.serialization")
    app = sorted(m for m in loaded if any(m == a or m.startswith(a + ".") for a in APPLICATION))
    third_party = {m.split(".")[0] for m in loaded - baseline} - set(sys.stdlib_module_names)
    extra = sorted(third_party - {"sreconv"})
    assert not app and not extra, (app, extra)
