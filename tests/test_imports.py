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
