"""The house rule on imports, read from the source files (no module is imported):
the seven steps (`groundup.learn`) stand on their own, below every face of the
project and below data-parallel training, which plugs into them as a callback."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "groundup"

# what learn/ must never import, at the top of a module or inside a function
NOT_FROM_LEARN = ("cli", "web", "show", "runs", "distributed")


def groundup_imports(source: str, package: str) -> set[str]:
    """The groundup modules that `source` (a module of `package`, e.g. "groundup.learn")
    imports, anywhere in it, as dotted names: "groundup.runs.config", ..."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..runs import y
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "groundup" or name.startswith("groundup.")}


def forbidden(imports: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in imports
        for part in banned
        if name == f"groundup.{part}" or name.startswith(f"groundup.{part}.")
    )


def test_the_scanner_sees_every_form_of_import() -> None:
    """The rule's own check can fail: each form of import it must catch."""
    source = (
        "import groundup.distributed\n"
        "from groundup.runs.config import TrainConfig\n"
        "def f():\n    from groundup import show\n"
        "from ..web import app\n"
        "from .losses import mnist_loss\n"
    )
    imports = groundup_imports(source, "groundup.learn")
    assert forbidden(imports, NOT_FROM_LEARN) == [
        "groundup.distributed",
        "groundup.runs.config",
        "groundup.runs.config.TrainConfig",
        "groundup.show",
        "groundup.web",
        "groundup.web.app",
    ]
    assert "groundup.learn.losses" in imports


@pytest.mark.parametrize("path", sorted((SRC / "learn").glob("*.py")), ids=lambda p: p.name)
def test_learn_imports_nothing_from_the_faces_runs_or_distributed(path: Path) -> None:
    imports = groundup_imports(path.read_text(), "groundup.learn")
    assert forbidden(imports, NOT_FROM_LEARN) == [], path.name


def test_learn_has_modules_to_check() -> None:
    assert len(list((SRC / "learn").glob("*.py"))) >= 8


# -- the other house rules of docs/architecture.md ---------------------------------------------

FACES = ("cli", "web")  # nothing imports these but themselves (and `python -m groundup`)
MAX_LINES = 450  # "about 400": a module longer than this is doing two jobs
LONG_ON_PURPOSE = {"show/figures.py"}  # one function per figure: easier to find in one file


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _package_of(path: Path) -> str:
    """The package a module (or an __init__.py) belongs to: groundup.data for data/idx.py."""
    return ".".join(("groundup", *path.relative_to(SRC).parts[:-1]))


def too_long(rel: str, text: str) -> int | None:
    """The module's line count when it breaks the size rule, else None."""
    lines = len(text.splitlines())
    return lines if lines > MAX_LINES and rel not in LONG_ON_PURPOSE else None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_nothing_imports_the_faces(path: Path) -> None:
    rel = path.relative_to(SRC)
    if rel.parts[0] in FACES or rel.name == "__main__.py":
        return  # a face may import itself; `python -m groundup` starts the command line
    imports = groundup_imports(path.read_text(), _package_of(path))
    assert forbidden(imports, FACES) == [], rel


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_is_doing_two_jobs(path: Path) -> None:
    rel = str(path.relative_to(SRC))
    lines = too_long(rel, path.read_text())
    assert lines is None, f"{rel} has {lines} lines: split it by responsibility"


def test_the_other_rules_can_fail() -> None:
    assert too_long("runs/long.py", "x = 1\n" * (MAX_LINES + 1)) == MAX_LINES + 1
    assert too_long("show/figures.py", "x = 1\n" * (MAX_LINES + 1)) is None
    assert too_long("runs/short.py", "x = 1\n" * MAX_LINES) is None
    found = groundup_imports("from groundup.cli import main\n", "groundup.runs")
    assert forbidden(found, FACES) == ["groundup.cli", "groundup.cli.main"]
