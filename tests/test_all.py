"""groundup.all: the names the article's code uses, and the adapters behind them."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import groundup.all as everything
from groundup.all import (
    SGD,
    DataLoader,
    DataLoaders,
    L,
    Learner,
    Path,
    first,
    nn,
    plot_function,
    show_image,
    tensor,
)
from groundup.compat import learner as compat_learner
from groundup.errors import UsageError
from groundup.learn.losses import batch_accuracy, mnist_loss

ARTICLE_NAMES = {
    # libraries under their usual short names
    "torch", "nn", "F", "np", "array", "Image", "pd", "matplotlib", "plt",
    # fastai's vocabulary
    "tensor", "Path", "L", "first", "untar_data", "URLs", "DataLoader", "DataLoaders", "SGD",
    "Learner", "show_image", "plot_function",
    # the article's step names
    "init_params", "linear1", "mnist_loss", "sigmoid", "batch_accuracy", "calc_grad",
    "train_epoch", "validate_epoch", "BasicOptim", "simple_net",
}  # fmt: skip


def test_the_star_import_gives_every_name_the_article_uses() -> None:
    namespace: dict = {}
    exec("from groundup.all import *", namespace)
    assert ARTICLE_NAMES <= set(namespace)
    assert set(everything.__all__) <= set(namespace)
    import torch.nn.functional

    assert namespace["F"] is torch.nn.functional and namespace["nn"] is torch.nn
    assert namespace["pd"].__name__ == "pandas" and namespace["plt"].__name__.endswith("pyplot")


def test_a_readers_own_definitions_win_and_ours_do_not_depend_on_theirs() -> None:
    namespace: dict = {}
    code = (
        "from groundup.all import *\n"
        "def mnist_loss(p, t): return 'the reader'\n"
        "tensor = torch = None\n"  # even these, shadowed, leave our adapters working
        "dl = DataLoader(list(zip([1, 2, 3], [4, 5, 6])), batch_size=2)\n"
    )
    exec(code, namespace)
    assert namespace["mnist_loss"](None, None) == "the reader"
    assert [b[0].tolist() for b in namespace["dl"]] == [[1, 2], [3]]


def test_it_patches_nothing_and_needs_no_fastai() -> None:
    """No assignment into another library's modules or classes, no setattr, no fastai.

    Read from the source, so that it holds whatever ran before this test."""
    import ast
    import inspect

    import groundup.compat

    foreign = {"torch", "nn", "F", "np", "numpy", "pd", "pandas", "pathlib", "Image", "plt"}
    folder = pathlib.Path(inspect.getfile(groundup.compat)).parent
    for source in [pathlib.Path(inspect.getfile(everything)), *sorted(folder.glob("*.py"))]:
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                base = t
                while isinstance(base, ast.Attribute):
                    base = base.value
                assert not (isinstance(t, ast.Attribute) and getattr(base, "id", "") in foreign), (
                    f"{source.name}:{node.lineno} assigns into {ast.unparse(t)}"
                )
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setattr":
                raise AssertionError(f"{source.name}:{node.lineno} calls setattr")
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                assert not any(n.split(".")[0] == "fastai" for n in names), source.name
    assert not hasattr(pathlib.Path("."), "ls")
    assert "fastai" not in sys.modules


# -- tensor --------------------------------------------------------------------------------------


def test_tensor_takes_what_the_article_gives_it() -> None:
    im = Image.fromarray(np.arange(28 * 28, dtype=np.uint8).reshape(28, 28), mode="L")
    t = tensor(im)
    assert t.dtype == torch.uint8 and t.shape == (28, 28) and int(t[0, 5]) == 5
    t[0, 0] = 9  # writable: its own memory, not the image's read-only buffer
    assert tensor([[1, 2, 3], [4, 5, 6]]).dtype == torch.int64
    assert tensor([1] * 3 + [0] * 2).tolist() == [1, 1, 1, 0, 0]
    assert tensor(0.0).shape == () and tensor(0.0).dtype == torch.float32
    assert tensor(1, 2, 3).tolist() == [1, 2, 3]
    arr = np.ones((2, 2), dtype=np.uint8)
    assert tensor(arr).dtype == torch.uint8
    stacked = tensor([torch.zeros(3), torch.ones(3)])
    assert stacked.shape == (2, 3)
    same = torch.ones(2)
    assert tensor(same) is same
    assert tensor([1, 2], dtype=torch.float32).dtype == torch.float32
    with pytest.raises(TypeError, match="cannot make a tensor from"):
        tensor({"a": 1})


# -- Path, L, first ------------------------------------------------------------------------------


def _folder(root: pathlib.Path) -> Path:
    for d in range(10):
        (root / "training" / str(d)).mkdir(parents=True)
    (root / "training" / "3" / "b.png").write_bytes(b"")
    (root / "training" / "3" / "a.png").write_bytes(b"")
    (root / "training" / "3" / "notes.txt").write_text("")
    return Path(root)


def test_ls_lists_relative_to_base_path(tmp_path, monkeypatch) -> None:
    path = _folder(tmp_path)
    monkeypatch.setattr(Path, "BASE_PATH", path)
    listing = (path / "training").ls()
    assert isinstance(listing, L) and len(listing) == 10
    text = repr(listing)
    assert text.startswith("(#10) [Path('training/") and text.endswith("')]")
    assert repr(path / "training" / "3") == "Path('training/3')"
    files = (path / "training" / "3").ls().sorted()
    assert [p.name for p in files] == ["a.png", "b.png", "notes.txt"]
    assert repr(files[0]) == "Path('training/3/a.png')"
    assert [p.name for p in (path / "training" / "3").ls(file_exts=".png").sorted()] == [
        "a.png",
        "b.png",
    ]
    assert len((path / "training").ls(n_max=3)) == 3
    # every path derived from ours is ours, with ls
    assert isinstance(path.parent, Path) and isinstance(files[0], Path)
    monkeypatch.setattr(Path, "BASE_PATH", None)
    assert repr(path / "training") == f"Path('{(tmp_path / 'training').as_posix()}')"


def test_ls_of_a_file_says_so(tmp_path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        Path(tmp_path / "f").ls()


def test_l_prints_its_length_and_the_first_ten() -> None:
    assert repr(L(range(3))) == "(#3) [0, 1, 2]"
    assert repr(L(range(12))) == "(#12) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...]"
    assert L(None) == [] and L(1, 2, 3) == [1, 2, 3] and L("ab") == ["ab"] and L(5) == [5]
    assert L([3, 1, 2]).sorted() == [1, 2, 3]
    assert isinstance(L([3, 1, 2])[:2], L)
    assert L([(1, "a"), (2, "b")]).itemgot(1) == ["a", "b"]
    assert L([1, 2, 3]).map(lambda v: v * 2) == [2, 4, 6]
    assert L([1, 2, 3]).filter(lambda v: v > 1) == [2, 3]


def test_first() -> None:
    assert first([4, 5]) == 4 and first([]) is None
    assert first(range(10), lambda v: v > 6) == 7
    xb, yb = first(DataLoader(list(zip(torch.rand(5, 4), torch.ones(5, 1))), batch_size=2))
    assert xb.shape == (2, 4) and yb.shape == (2, 1)


# -- SGD -----------------------------------------------------------------------------------------


def _fit_steps(make_opt, steps: int = 20) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Linear(5, 1)
    x, y = torch.randn(32, 5), torch.randn(32, 1)
    opt = make_opt(model.parameters())
    for _ in range(steps):
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
        opt.zero_grad()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize(
    ("ours", "torchs"),
    [
        ({}, {}),
        ({"mom": 0.9}, {"momentum": 0.9}),
        # without momentum, decoupled weight decay is the same as L2 (torch's weight_decay)
        ({"wd": 0.05}, {"weight_decay": 0.05}),
    ],
    ids=["plain", "momentum", "weight-decay"],
)
def test_sgd_agrees_with_torch(ours, torchs) -> None:
    mine = _fit_steps(lambda p: SGD(p, 0.1, **ours))
    theirs = _fit_steps(lambda p: torch.optim.SGD(p, lr=0.1, **torchs))
    start = _fit_steps(lambda p: SGD(p, 0.1), steps=0)
    for a, b, s in zip(mine, theirs, start):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert not torch.equal(a, s)  # the parameters moved


def test_sgd_momentum_and_decay_one_step_by_hand() -> None:
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = SGD([w], lr=0.1, mom=0.5, wd=0.2)
    w.grad = torch.tensor([0.5, 0.5])
    opt.step()
    # decay: w * (1 - 0.1 * 0.2) = w * 0.98 -> [0.98, -1.96]; first v = g = [0.5, 0.5]
    # step: w - 0.1 * v -> [0.93, -2.01]
    torch.testing.assert_close(w.detach(), torch.tensor([0.93, -2.01]))
    w.grad = torch.tensor([1.0, 0.0])
    opt.step()
    # decay: [0.9114, -1.9698]; v = 0.5 * [0.5, 0.5] + [1, 0] = [1.25, 0.25]
    # step: [0.9114 - 0.125, -1.9698 - 0.025] = [0.7864, -1.9948]
    torch.testing.assert_close(w.detach(), torch.tensor([0.7864, -1.9948]))


def test_sgd_refuses_bad_settings() -> None:
    w = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(UsageError, match="mom must lie in"):
        SGD(w, 0.1, mom=1.5)
    with pytest.raises(UsageError, match="wd must be 0 or more"):
        SGD(w, 0.1, wd=-1)
    with pytest.raises(UsageError, match="learning rate"):
        SGD(w, 0)


# -- Learner ---------------------------------------------------------------------------------------


@pytest.fixture
def list_dls(pair_sets) -> DataLoaders:
    train, valid = pair_sets
    return DataLoaders(
        DataLoader(list(zip(train.x, train.y)), batch_size=256),
        DataLoader(list(zip(valid.x, valid.y)), batch_size=256),
    )


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(28 * 28, 30), nn.ReLU(), nn.Linear(30, 1))


def test_fit_shows_fastais_table_once_and_records_values(list_dls, capsys) -> None:
    model = _net()
    learn = Learner(list_dls, model, opt_func=SGD, loss_func=mnist_loss, metrics=batch_accuracy)
    assert learn.fit(3, 0.1) is None  # as fastai: nothing for a notebook to show again
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "batch_accuracy", "time"]
    assert [line.split()[0] for line in lines[1:]] == ["0", "1", "2"] and len(lines) == 4
    values = learn.recorder.values
    assert len(values) == 3 and all(len(row) == 3 for row in values)
    for line, row in zip(lines[1:], values):
        cells = line.split()
        assert [float(c) for c in cells[1:4]] == pytest.approx(row, abs=1e-6)
        assert cells[4] == "00:00"
    assert values[-1] == [
        pytest.approx(learn.history[-1]["train_loss"]),
        pytest.approx(learn.history[-1]["valid_loss"]),
        pytest.approx(learn.history[-1]["accuracy"]),
    ]
    assert learn.model is model
    assert learn.recorder.metric_names[3] == "batch_accuracy"
    assert len(learn.recorder.losses) == 3 * 4  # 800 images: 4 batches an epoch
    # a second fit continues training, and its table and values start again at epoch 0
    learn.fit(2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["0", "1"]
    assert len(learn.recorder.values) == 2 and learn.epoch_count == 5
    assert learn.lr == compat_learner.DEFAULT_LR  # fit(n) uses the Learner's lr, fastai's 1e-3


def test_no_logging_and_groundups_own_learner_are_silent(list_dls, dls_pair, capsys) -> None:
    learn = Learner(list_dls, _net(), opt_func=SGD, loss_func=mnist_loss)
    with learn.no_logging():
        learn.fit(2, 0.1)
    assert len(learn.recorder.values) == 2 and len(learn.recorder.values[0]) == 2  # no metric
    from groundup.learn.learner import Learner as LibraryLearner

    LibraryLearner(dls_pair, _net(), loss_func=mnist_loss).fit(2, 0.1)
    assert capsys.readouterr().out == ""
    learn.fit(1)  # the table is back after the with-block
    assert "train_loss" in capsys.readouterr().out


def test_in_jupyter_the_table_is_html_updated_row_by_row(list_dls, monkeypatch, capsys) -> None:
    shown: list[str] = []

    class Handle:
        def update(self, obj) -> None:
            shown.append(obj.data)

    def display(obj, display_id=None):
        assert display_id is True
        shown.append(obj.data)
        return Handle()

    import IPython.display

    monkeypatch.setattr(compat_learner, "_in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    learn = Learner(list_dls, _net(), opt_func=SGD, loss_func=mnist_loss, metrics=batch_accuracy)
    learn.fit(3, 0.1)
    assert capsys.readouterr().out == ""  # nothing as text: the table is shown once, as HTML
    assert len(shown) == 4  # the empty table, then one update per epoch
    assert [s.count("<tr>") for s in shown] == [0, 1, 2, 3]
    assert "<th>batch_accuracy</th>" in shown[-1] and "<td>00:00</td>" in shown[-1]


def test_plot_loss_draws_the_batches_and_the_epochs(list_dls) -> None:
    import matplotlib.pyplot as plt

    learn = Learner(list_dls, _net(), opt_func=SGD, loss_func=mnist_loss)
    with pytest.raises(UsageError, match="call learn.fit first"):
        learn.recorder.plot_loss()
    with learn.no_logging():
        learn.fit(4, 0.1)
    ax = learn.recorder.plot_loss(skip_start=2)
    train_line, valid_line = ax.get_lines()
    assert len(train_line.get_xdata()) == 16 - 2
    assert list(valid_line.get_xdata()) == [4, 8, 12, 16]
    assert list(valid_line.get_ydata()) == [v[1] for v in learn.recorder.values]
    plt.close("all")


def test_the_learner_needs_a_loss(list_dls) -> None:
    with pytest.raises(UsageError, match="pass loss_func="):
        Learner(list_dls, _net())


# -- show_image and plot_function -----------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        torch.rand(784),
        torch.rand(28, 28),
        torch.rand(1, 28, 28),
        torch.rand(28, 28, requires_grad=True),
        np.zeros((28, 28), dtype=np.uint8),
        Image.new("L", (28, 28)),
    ],
    ids=["flat", "square", "channel-first", "with-grad", "array", "pil"],
)
def test_show_image_draws_28_by_28_and_returns_the_axes(image) -> None:
    import matplotlib.pyplot as plt

    ax = show_image(image)
    assert ax.get_images()[0].get_array().shape == (28, 28)
    plt.close("all")


def test_show_image_refuses_what_is_not_an_image() -> None:
    with pytest.raises(ValueError, match="do not make a square image"):
        show_image(torch.rand(780))


def test_plot_function_draws_f_over_its_range() -> None:
    import matplotlib.pyplot as plt

    ax = plot_function(torch.sigmoid, title="Sigmoid")
    (line,) = ax.get_lines()
    xs, ys = line.get_xdata(), line.get_ydata()
    assert len(xs) == 100 and xs[0] == pytest.approx(-2.1) and xs[-1] == pytest.approx(2.1)
    assert ys == pytest.approx(torch.sigmoid(torch.tensor(xs)).numpy(), abs=1e-6)
    assert ax.get_title() == "Sigmoid"
    ax = plot_function(lambda x: x**2, min=-4, max=4)
    assert ax.get_lines()[0].get_xdata()[-1] == pytest.approx(4)
    ax = plot_function(lambda x: x**2, "x", "x**2")  # fastbook's form: axis labels
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("x", "x**2", "")
    plt.close("all")
