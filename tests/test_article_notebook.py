"""docs/the-article-as-written.ipynb: it is what docs/build_article_notebook.py builds, it
is committed with its outputs, and it runs from top to bottom offline on the sample."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
NOTEBOOK = DOCS / "the-article-as-written.ipynb"


def _builder():
    path = DOCS / "build_article_notebook.py"
    spec = importlib.util.spec_from_file_location("build_article_notebook", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(nb) -> list[tuple[int, dict]]:
    return [(i, out) for i, c in enumerate(nb.cells) for out in c.get("outputs", [])]


def _text(nb) -> str:
    parts = []
    for _, out in _outputs(nb):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/html", "") + out.data.get("text/plain", ""))
    return "\n".join(parts)


def _check_outputs(nb) -> None:
    assert [f"{o.ename}: {o.evalue}" for _, o in _outputs(nb) if o.output_type == "error"] == []
    text = _text(nb)
    assert "(#2) [Path('training'), Path('testing')]" in text  # listings relative to BASE_PATH
    assert "(#10) [Path('training/" in text
    assert "dtype=torch.uint8" in text  # a digit as numbers
    assert "background-color" in text  # the pandas Styler's shaded table
    assert "(torch.Size([256, 784]), torch.Size([256, 1]))" in text
    # the article's bug, caught, with the set, the numbers and the causes in the output
    assert "DataError: DataLoaders: the images are not all scaled alike" in text
    assert "(divided by 255 twice?)" in text and "(not divided by 255?)" in text
    # the Learner's tables, as HTML: 10 rows, then 15 rows
    tables = [
        out.data["text/html"]
        for _, out in _outputs(nb)
        if "text/html" in out.get("data", {}) and "<th>train_loss</th>" in out.data["text/html"]
    ]
    assert [t.count("<tr>") for t in tables] == [10, 15]  # one row per epoch
    m = re.search(r"simple_net after 15 epochs: valid accuracy (\d\.\d+)", text)
    assert m and float(m.group(1)) >= 0.95
    images = sum("image/png" in out.get("data", {}) for _, out in _outputs(nb))
    assert images >= 4  # the digit, the sigmoid, the losses, the neuron
    # nothing about the machine it ran on
    assert not re.search(r"/(tmp|root|home|work|Users)/", text)


def test_the_committed_notebook_is_what_the_script_builds() -> None:
    committed = nbformat.read(NOTEBOOK, as_version=4)
    built = _builder().build()
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in built.cells
    ], "rebuild it: .venv/bin/python docs/build_article_notebook.py"


def test_it_starts_with_the_one_changed_line() -> None:
    code = [c.source for c in _builder().build().cells if c.cell_type == "code"]
    assert "from groundup.all import *" in code[0].splitlines()
    assert not any("groundup" in line for cell in code[1:] for line in cell.splitlines())


def test_the_committed_notebook_has_its_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code")
    _check_outputs(nb)


@pytest.mark.slow
def test_the_notebook_runs_offline_on_the_sample(tmp_path, untar_home, monkeypatch) -> None:
    """Execute every cell in a fresh kernel (the kernel inherits the cache folder)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(untar_home))
    builder = _builder()
    nb = builder.execute(builder.build(), tmp_path, timeout=180)
    _check_outputs(nb)
