"""The ten-digit models: cnn and the pixel-similarity baseline `mean`; training three or
more classes with softmax; saving and loading; and bad input on the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from groundup.data.tensors import DataLoaders, Dataset, to_tensors
from groundup.learn import names
from groundup.learn.models import MODELS, MeanClassifier, ModelSpec, build_model, cnn, fit_means
from groundup.runs.config import TrainConfig
from helpers_runs import save_model


def test_every_model_name_has_a_builder():
    assert tuple(MODELS) == names.MODELS


def test_cnn_shapes():
    torch.manual_seed(0)
    net = cnn(n_out=10, channels=(8, 16))
    out = net(torch.rand(5, 784))
    assert out.shape == (5, 10)
    # 1*8*9 + 8, 8*16*9 + 16, 16*49*10 + 10
    assert sum(p.numel() for p in net.parameters()) == 80 + 1168 + 7850
    assert build_model(ModelSpec("cnn", n_out=1))(torch.rand(2, 784)).shape == (2, 1)


def test_mean_model_by_hand():
    # two classes in 4 pixels: means (1, 0, 0, 0) and (0, 0, 0, 1)
    x = torch.tensor([[1.0, 0, 0, 0], [1.0, 0.2, 0, 0], [0, 0, 0, 1.0], [0, 0.2, 0, 1.0]])
    cls = torch.tensor([0, 0, 1, 1])
    model = MeanClassifier(3, n_in=4).fit_means(
        torch.cat([x, torch.tensor([[0, 0, 1.0, 0]])]), torch.cat([cls, torch.tensor([2])])
    )
    assert torch.allclose(model.means[0], torch.tensor([1.0, 0.1, 0, 0]))
    query = torch.tensor([[0.9, 0, 0, 0.1], [0, 0, 0.8, 0]])
    scores = model(query)  # (2, 3): minus the RMSE distance to each mean
    expected = -torch.cdist(query, model.means) / 2  # sqrt(mean over 4 pixels)
    assert torch.allclose(scores, expected, atol=1e-6)
    assert scores.argmax(1).tolist() == [0, 2]


def test_mean_model_for_a_pair_scores_like_the_article(pair_sets):
    """One score per image, above 0 when nearer the first digit's mean (label 1)."""
    train, valid = pair_sets
    model = fit_means(train)
    assert model.means.shape == (2, 784)
    assert torch.allclose(model.means[0], train.x[train.y[:, 0] == 1].mean(0))
    out = model(valid.x)
    assert out.shape == (len(valid), 1)
    d = torch.cdist(valid.x, model.means)  # (N, 2)
    nearer_first = d[:, 0] < d[:, 1]
    assert torch.equal(out[:, 0] > 0, nearer_first)


def test_mean_trains_in_one_pass_through_the_learner(sample_raw):
    digits = tuple(range(10))
    raw = sample_raw
    train = Dataset(*to_tensors(raw.train_images, raw.train_labels, digits), digits, "train")
    valid = Dataset(*to_tensors(raw.valid_images, raw.valid_labels, digits), digits, "valid")
    from groundup.runs.training import make_run

    run = make_run(
        TrainConfig(digits=digits, model="mean", device="cpu"),
        dls=DataLoaders.from_datasets(train, valid),
    )
    learn = run.learner
    assert run.config.epochs == 1 and run.config.augment is False
    run.fit()
    # nearest class mean, by hand
    means = torch.stack([train.x[train.y == k].mean(0) for k in range(10)])
    by_hand = (torch.cdist(valid.x, means).argmin(1) == valid.y).float().mean().item()
    assert learn.history[-1]["accuracy"] == pytest.approx(by_hand, abs=1e-6)
    assert 0.75 < by_hand < 0.9  # a baseline: well above chance, well below the nets


@pytest.mark.parametrize("name", ["mean", "cnn"])
def test_save_and_load_round_trip(tmp_path, name):
    from groundup.runs.saved import load_run

    torch.manual_seed(0)
    spec = ModelSpec(name, n_out=3)
    model = build_model(spec)
    if name == "mean":
        model.fit_means(torch.rand(30, 784), torch.arange(30) % 3)
    save_model(tmp_path / name, model, TrainConfig(model=name, digits=(0, 1, 2)))
    run = load_run(tmp_path / name)
    x = torch.rand(4, 784)
    with torch.no_grad():
        assert torch.allclose(run.model(x), model(x), atol=1e-6)
    assert torch.allclose(run.predict_proba(x).sum(1), torch.ones(4))


def test_three_digits_train_with_softmax(sample_raw):
    from groundup.runs.training import make_run

    digits = (3, 5, 8)
    raw = sample_raw
    train = Dataset(*to_tensors(raw.train_images, raw.train_labels, digits), digits, "train")
    valid = Dataset(*to_tensors(raw.valid_images, raw.valid_labels, digits), digits, "valid")
    run = make_run(
        TrainConfig(digits=digits, model="net", hidden=[32], epochs=3, device="cpu"),
        dls=DataLoaders.from_datasets(train, valid),
    )
    learn = run.learner
    preds_before = learn.model(valid.x[:2])
    assert preds_before.shape == (2, 3)  # one output per class
    run.fit()
    assert learn.loss_func.__name__ == "cross_entropy"
    assert learn.history[-1]["accuracy"] > 0.8  # chance is 1/3




def test_cli_trains_mean_and_reports_accuracy(cli, tmp_path):
    r = cli("train", "--model", "mean", "--digits", "all", "--json", "--out", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["epochs"]) == 1
    assert 0.75 < out["final"]["accuracy"] < 0.9


def test_cli_bad_layers_is_one_line_exit_2(cli):
    r = cli("train", "--model", "net", "--layers", "256,abc")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "--hidden must be a whole number, not 'abc'" in r.stderr  # --layers is --hidden


def test_cli_digit_the_data_lacks_is_one_line_exit_1(cli, tmp_path):
    """A data folder with digits 0-2 only, asked for 0 1 7."""
    from groundup.data.idx import write_idx

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 9)):
        write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte",
            rng.integers(0, 255, (n, 28, 28), dtype=np.uint8),
        )
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 3).astype(np.uint8))
    r = cli("train", "--data", str(tmp_path), "--digits", "0", "1", "7", "--quiet")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1
    assert "no digit 7" in r.stderr


def test_ten_class_defaults_depend_on_the_training_set_size():
    from groundup.runs.config import LARGE_TRAIN

    ten = tuple(range(10))
    # (small epochs, small lr, large epochs, large lr): the goals of docs/ten-digits.md
    # were measured with these
    expected = {
        "linear": (20, 1e-2, 8, 1e-2),
        "net": (40, 3e-3, 25, 2e-3),
        "cnn": (15, 1e-2, 6, 1e-2),
    }
    for model, want in expected.items():
        small = TrainConfig(digits=ten, model=model).resolved(n_train=4000)
        large = TrainConfig(digits=ten, model=model).resolved(n_train=LARGE_TRAIN)
        assert (small.epochs, small.lr, large.epochs, large.lr) == want
        assert (small.opt, small.schedule) == ("adam", "one-cycle")
        assert large.augment is False  # enough real images; augmentation would only slow it
    # given settings always win
    assert TrainConfig(digits=ten, model="net", epochs=3).resolved(n_train=60000).epochs == 3
    mean = TrainConfig(digits=ten, model="mean").resolved(n_train=60000)
    assert (mean.epochs, mean.augment) == (1, False)


def test_cnn_filters_are_channels_last_and_compute_the_same_numbers():
    """The layout is a speed detail: same outputs (1e-5) as the ordinary layout."""
    import torch

    from groundup.learn.models import cnn

    torch.manual_seed(0)
    fast = cnn()
    conv = fast[4]  # the second convolution: 64 filters of 32x3x3
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()  # with 32 channels the layouts differ
    plain = cnn().to(memory_format=torch.contiguous_format)
    plain.load_state_dict({k: v.contiguous() for k, v in fast.state_dict().items()})
    x = torch.rand(8, 784)
    torch.testing.assert_close(fast(x), plain(x), rtol=0, atol=1e-5)


def test_cnn_pools_before_its_relu_with_the_numbers_of_relu_then_pool():
    """max-pool then ReLU is ReLU then max-pool, outputs and gradients bit for bit."""
    from torch import nn

    torch.manual_seed(0)
    fast = cnn()
    kinds = [type(layer) for layer in fast]
    assert kinds[1:4] == [nn.Conv2d, nn.MaxPool2d, nn.ReLU]
    assert kinds[4:7] == [nn.Conv2d, nn.MaxPool2d, nn.ReLU]
    layers = list(fast)
    layers[2], layers[3], layers[5], layers[6] = layers[3], layers[2], layers[6], layers[5]
    textbook = nn.Sequential(*layers)  # the same modules: conv, ReLU, pool, twice
    x = torch.rand(16, 784) * 2 - 1  # negative pixels too, so the ReLUs cut something
    y = torch.randint(0, 10, (16,))
    grads = []
    for model in (fast, textbook):
        out = model(x)
        nn.functional.cross_entropy(out, y).backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
        model.zero_grad()
    (out_a, g_a), (out_b, g_b) = grads
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(g_a, g_b, strict=True))
