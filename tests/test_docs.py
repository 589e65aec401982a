"""Every Python example in README.md and every docstring example in the package runs."""

import doctest
import importlib
import pkgutil
import re
import shlex
from pathlib import Path

import pytest

import sreconv
from tests.tiers import representatives, slow

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


# Examples that build whole networks or convert real ones run in the full suite only.
_HEAVY_BLOCK = re.compile(r"create_model|torchvision|monai")
_HEAVY_MODULES = {"sreconv.equivariance", "sreconv.models.cube", "sreconv.models.d4", "sreconv.models.lifted",
                  "sreconv.models.registry", "sreconv.models.resnet", "sreconv.models.resnet3d"}


@pytest.mark.parametrize("index", [pytest.param(i, marks=slow) if _HEAVY_BLOCK.search(block) else i
                                   for i, block in enumerate(BLOCKS)])
def test_readme_example(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples may write files
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), {"__name__": "__readme__"})


def _modules_with_examples():
    """Every module of the library and the benchmark package whose docstrings hold an example that runs."""
    import sreconv_bench

    names = ["SRE_Conv"]
    for package in (sreconv, sreconv_bench):
        names += [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    finder = doctest.DocTestFinder()
    with_examples = []
    for name in sorted(set(names)):
        module = importlib.import_module(name)
        if any(not example.options.get(doctest.SKIP) for test in finder.find(module) for example in test.examples):
            with_examples.append(name)
    return with_examples


MODULES = _modules_with_examples()


def test_examples_are_found():
    assert {"sreconv.nn.conv", "sreconv.models.registry", "sreconv.engine.train"} <= set(MODULES)


@pytest.mark.parametrize("name", representatives(MODULES, set(MODULES) - _HEAVY_MODULES))
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def _readme_commands():
    """Every ``sreconv ...`` command line of the README's bash blocks (continuations joined, comments dropped)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "-m" in words and "sreconv" in words:  # torchrun ... -m sreconv train ...
                words = words[words.index("sreconv"):]
            if words[:1] == ["sreconv"]:
                commands.append(words[1:])
    return commands


def test_readme_commands_parse():
    from sreconv.cli import build_parser

    commands = _readme_commands()
    assert len(commands) >= 15
    parser = build_parser()
    for argv in commands:
        parser.parse_args(argv)  # an unknown command or flag exits with argparse's error
