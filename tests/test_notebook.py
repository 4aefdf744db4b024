"""docs/how-neural-networks-work.ipynb: it is what docs/build_notebook.py builds, it is
committed with its outputs, and it runs from top to bottom on the bundled sample."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebook", DOCS / "build_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(nb) -> str:
    """Everything the notebook printed or displayed as text or HTML."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif "data" in out:
                parts.append(out.data.get("text/html", "") + out.data.get("text/plain", ""))
    return "\n".join(parts)


def _count(nb, mime: str) -> int:
    return sum(mime in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))


def _errors(nb) -> list[str]:
    return [
        f"cell {i}: {out.ename}: {out.evalue}"
        for i, c in enumerate(nb.cells)
        for out in c.get("outputs", [])
        if out.output_type == "error"
    ]


def _check_outputs(nb) -> None:
    assert _errors(nb) == []
    text = _text(nb)
    m = re.search(r"simple_net after 40 epochs: valid accuracy (\d\.\d+)", text)
    assert m and float(m.group(1)) >= 0.95
    assert "the reloaded model gives the same probabilities: True" in text
    assert "smallest 0 largest 255" in text  # a 2 as numbers
    assert "torch.Size([400, 28, 28])" in text  # the stacked tensors
    assert "<table" in text  # the pixel table, the Learner's and the Run's displays
    assert _count(nb, "image/png") >= 13  # every figure the notebook draws


def test_the_committed_notebook_is_what_the_script_builds():
    committed = nbformat.read(DOCS / "how-neural-networks-work.ipynb", as_version=4)
    built = _builder().build()
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in built.cells
    ], "rebuild it: .venv/bin/python docs/build_notebook.py"


def test_the_committed_notebook_has_its_outputs():
    nb = nbformat.read(DOCS / "how-neural-networks-work.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    _check_outputs(nb)


@pytest.mark.slow
def test_the_notebook_runs_on_the_sample(tmp_path):
    """Execute every cell in a fresh kernel (about 20 s on a quiet 2-core machine)."""
    builder = _builder()
    nb = builder.execute(builder.build(), tmp_path, timeout=180)
    _check_outputs(nb)
    assert (tmp_path / "runs" / "notebook-net" / "model.safetensors").is_file()
