"""The HTML report: every section, every picture inlined, nothing from the network,
numbers that agree with the run; and the `report`, `train --report` and `figure` commands."""

from __future__ import annotations

import base64
import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from groundup.cli import main
from groundup.errors import RunError
from groundup.runs.saved import INIT_WEIGHTS, load_init_state, load_run
from groundup.show.report import SECTIONS
from groundup.show.view import initial_model, view_run


def _train(out: Path, **settings) -> Path:
    """Train and save a run as `groundup train` does, initial weights included."""
    from groundup.runs.config import TrainConfig
    from groundup.runs.saved import save_run
    from groundup.runs.training import train

    return save_run(out, train(TrainConfig(device="cpu", **settings)))


@pytest.fixture(scope="module")
def linear_dir(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("report") / "linear")


@pytest.fixture(scope="module")
def linear_report(linear_dir, tmp_path_factory) -> str:
    """The report written by `groundup report RUN_DIR --out FILE`."""
    out = tmp_path_factory.mktemp("out") / "r.html"
    assert main(["report", str(linear_dir), "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def net_train(tmp_path_factory) -> tuple[Path, str]:
    """(run directory, what it printed) of a simple_net run made by `groundup train --report`."""
    out = tmp_path_factory.mktemp("report") / "net"
    args = ["train", "--model", "net", "--epochs", "4", "--out", str(out), "--report", "--quiet"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(args) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def net_dir(net_train) -> Path:
    return net_train[0]


def _sources(html: str) -> list[str]:
    return re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", html)


def test_report_holds_every_section_in_order(linear_report):
    positions = []
    for key, heading in SECTIONS:
        m = re.search(rf'<section id="{key}"><h2>{re.escape(heading)}</h2>', linear_report)
        assert m, f"missing section {heading!r}"
        positions.append(m.start())
    assert positions == sorted(positions)
    assert len(SECTIONS) == 7


def test_report_images_are_inlined_pngs(linear_report):
    imgs = re.findall(r'<img src="([^"]+)"', linear_report)
    assert len(imgs) >= 10
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_loads_nothing_from_the_network(linear_report):
    assert "http://" not in linear_report and "https://" not in linear_report
    for target in _sources(linear_report):
        assert target.startswith(("data:", "#")), target
    assert "<script" not in linear_report and "<link" not in linear_report
    assert "@import" not in linear_report and "url(" not in linear_report


def test_report_numbers_agree_with_the_run(linear_dir, linear_report):
    from groundup.runs.evaluate import evaluate_run
    from groundup.show.view import confusion

    run = load_run(linear_dir)
    final = run.meta["history"][-1]["accuracy"]
    assert f"is right {final:.1%} of the time" in linear_report
    view = view_run(run)
    cm = confusion(view)
    assert cm.sum() == len(view.valid) == 200
    assert cm.tolist() == evaluate_run(run)["confusion"]
    assert view.accuracy() == pytest.approx(final)


def test_report_shows_a_digit_as_its_784_numbers(linear_report):
    section = linear_report.split('<section id="data">')[1].split("</section>")[0]
    cells = re.findall(r"<td style=[^>]*>(\d+)</td>", section)
    assert len(cells) == 784
    assert max(int(c) for c in cells) > 200  # ink, on the 0-255 scale


def test_initial_weights_are_saved_and_are_the_seeds(linear_dir, net_dir):
    from groundup.learn.models import build_model

    for run_dir in (linear_dir, net_dir):
        run = load_run(run_dir)
        saved = load_init_state(run_dir)
        assert saved is not None
        model = initial_model(run)
        for name, value in saved.items():
            torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0)
        # they are the weights training drew from the seed (the test replays it; the
        # report never does)
        torch.manual_seed(run.meta["seed"])
        drawn = build_model(run.spec)
        for name, value in saved.items():
            torch.testing.assert_close(drawn.state_dict()[name], value, rtol=0, atol=0)
        # training moved them
        assert any(
            not torch.equal(value, run.model.state_dict()[name]) for name, value in saved.items()
        )


def test_a_run_without_initial_weights_is_refused_clearly(linear_dir):
    (linear_dir / INIT_WEIGHTS).rename(linear_dir / "moved.safetensors")
    try:
        with pytest.raises(RunError, match="has no init.safetensors: the report needs"):
            view_run(linear_dir)
    finally:
        (linear_dir / "moved.safetensors").rename(linear_dir / INIT_WEIGHTS)


def test_train_report_writes_a_report_of_simple_net(net_train):
    net_dir, printed = net_train
    assert f"report written to {net_dir / 'report.html'}" in printed
    html = (net_dir / "report.html").read_text(encoding="utf-8")
    assert (net_dir / INIT_WEIGHTS).is_file()
    assert html.count("<section") == 7
    assert 'alt="the first layer&#x27;s neurons"' in html
    assert 'alt="validation image 0 through the net"' in html
    assert "http://" not in html and "https://" not in html


def test_ten_digit_report_draws_a_weight_map_per_digit(tmp_path):
    from groundup.show.report import _weights_section
    from groundup.show.view import confusion

    run_dir = _train(tmp_path / "ten", digits=tuple(range(10)), epochs=1)
    view = view_run(run_dir)
    assert view.probs.shape == (1000, 10)
    assert confusion(view).sum() == 1000
    html = _weights_section(view)
    assert "One weight map per digit" in html and html.count("<img") == 2


# -- the command line -----------------------------------------------------------------------


def _figure_args(name: str, linear_dir: Path, net_dir: Path) -> list[str]:
    run_for = {"layers": net_dir, "activations": net_dir}
    from groundup.cli.report import FIGURES

    args = ["figure", name]
    if FIGURES[name][1]:
        args.append(str(run_for.get(name, linear_dir)))
    if name in ("digit", "pixels"):
        args += ["--digit", "2", "--index", "3"]
    if name == "pixels":
        args += ["--rows", "4:15", "--cols", "4:22"]  # the article's window: 198 numbers to draw
    return args


@pytest.mark.parametrize(
    "name",
    ["digit", "pixels", "steps", "descent", "sigmoid", "curves", "predictions", "weights",
     "histogram", "layers", "activations", "confusion", "top-losses"],
)
def test_every_figure_is_reachable_from_the_command_line(name, linear_dir, net_dir, tmp_path):
    from groundup.cli.report import FIGURES

    assert name in FIGURES
    out = tmp_path / f"{name}.png"
    assert main([*_figure_args(name, linear_dir, net_dir), "--out", str(out), "--dpi", "40"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_figure_list_is_what_the_tests_cover():
    from groundup.cli.report import FIGURES

    assert len(FIGURES) == 14  # accuracy-vs-compute: tests/test_compute_view.py


def test_figure_svg_and_pixels_html(tmp_path):
    svg = tmp_path / "s.svg"
    assert main(["figure", "sigmoid", "--out", str(svg)]) == 0
    assert b"<svg" in svg.read_bytes()[:500]
    page = tmp_path / "p.html"
    assert main(["figure", "pixels", "--digit", "9", "--rows", "4:15", "--cols", "4:22",
                 "--out", str(page)]) == 0
    text = page.read_text()
    assert text.count("<td") == 11 * 18


def test_figure_weights_of_a_linear_run_are_its_weights(linear_dir, tmp_path):
    """The command draws the run's own weights: compare with the library figure's pixels."""
    from groundup.show.figures import linear_weights, weights_figure

    run = load_run(linear_dir)
    w, b = linear_weights(run.model)
    fig = weights_figure(w, run.digits, b)
    shown = np.asarray(fig.get_axes()[0].get_images()[0].get_array())
    np.testing.assert_array_equal(shown, run.model.weight.detach().numpy()[:, 0].reshape(28, 28))


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["figure", "weights", "{net}"], 2, "the weights figure is for the linear model"),
        (["figure", "layers", "{linear}"], 2, "simple_net"),
        (["figure", "sigmoid", "--out", "x.pdf"], 2, "must end in .png or .svg"),
        (["figure", "digit", "--digit", "2", "--index", "400"], 2, "out of range"),
        (["figure", "activations", "{net}", "--index", "200"], 2, "out of range"),
        (["report", "{missing}"], 1, "no run directory"),
    ],
)
def test_command_line_errors_are_one_line(argv, code, message, linear_dir, net_dir, tmp_path,
                                          capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    subs = {"{net}": str(net_dir), "{linear}": str(linear_dir), "{missing}": str(tmp_path / "no")}
    assert main([subs.get(a, a) for a in argv]) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_the_report_names_fashion_mnist_classes_and_digits_plainly():
    """A Fashion-MNIST run's report says "class" and names each one; digits stay digits."""
    from types import SimpleNamespace

    from groundup.show.view import RunView

    def view_of(source: str) -> RunView:
        fields = dict.fromkeys(RunView.__dataclass_fields__)
        return RunView(**{**fields, "raw": SimpleNamespace(name=source)})

    fashion, sample = view_of("fashion-mnist"), view_of("sample")
    assert (fashion.word, fashion.name(0)) == ("class", "0 T-shirt/top")
    assert fashion.name(9) == "9 Ankle boot"
    assert (sample.word, sample.name(2)) == ("digit", "2")
