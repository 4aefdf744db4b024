"""The width trap: padding the output layer is internal, exact, measured and cached."""

from __future__ import annotations

import json

import pytest
import torch

from groundup.learn import names, widths
from groundup.learn.losses import cross_entropy
from groundup.learn.models import Sequential, linear_model, mlp


def test_padded_product_is_the_plain_product_and_its_gradient():
    torch.manual_seed(0)
    x = torch.randn(5, 7)
    w = torch.randn(7, 3, requires_grad=True)
    out = widths.padded_product(x, w, pad_to=16)
    assert out.shape == (5, 3)
    torch.testing.assert_close(out, x @ w, rtol=0, atol=1e-6)
    out.sum().backward()
    # d(sum(x @ w))/dw[i, j] = sum over the batch of x[:, i], for every column j
    torch.testing.assert_close(w.grad, x.sum(0, keepdim=True).T.expand(7, 3), atol=1e-6, rtol=0)


@pytest.mark.parametrize("build", [lambda: linear_model(n_out=10), lambda: mlp((32,), n_out=10)])
def test_padded_model_agrees_with_unpadded_within_1e5(build, monkeypatch):
    """Same weights, same predictions and losses; after a step, the same weights."""
    monkeypatch.setattr(names, "PAD_OUTPUT", True)
    torch.manual_seed(0)
    plain = build()
    torch.manual_seed(0)
    padded = build()
    assert widths.pad_output_layer(padded)
    last = padded.layers[-1] if isinstance(padded, Sequential) else padded
    assert last.pad_to == 16 and last.weight.shape[1] == 10  # the parameter is unpadded
    assert set(plain.state_dict()) == set(padded.state_dict())
    x, y = torch.rand(64, 784), torch.randint(0, 10, (64,))
    torch.testing.assert_close(padded(x), plain(x), rtol=0, atol=1e-5)
    losses = []
    for model in (plain, padded):
        loss = cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss.item())
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert abs(losses[0] - losses[1]) <= 1e-5
    for name, p in plain.state_dict().items():
        torch.testing.assert_close(padded.state_dict()[name], p, rtol=0, atol=1e-5)


def test_only_a_many_output_linear_layer_not_a_multiple_of_16_is_padded(monkeypatch):
    monkeypatch.setattr(names, "PAD_OUTPUT", True)
    assert not widths.pad_output_layer(linear_model(n_out=1))  # a pair's one score
    assert not widths.pad_output_layer(linear_model(n_out=16))
    assert widths.pad_output_layer(linear_model(n_out=10))
    monkeypatch.setattr(names, "PAD_OUTPUT", False)
    layer = linear_model(n_out=10)
    assert not widths.pad_output_layer(layer) and layer.pad_to == 0


def test_the_decision_is_measured_once_and_cached_per_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(names, "PAD_OUTPUT", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def fake_measure() -> dict:
        calls.append(1)
        return {"narrow_s": 2.0, "padded_s": 1.0, "pays": True}

    monkeypatch.setattr(widths, "measure", fake_measure)
    assert widths.padding_pays() and widths.padding_pays()
    assert len(calls) == 1  # the second answer came from the cache
    cached = json.loads((tmp_path / "groundup" / widths.CACHE_NAME).read_text())
    assert cached[widths.machine_key()]["pays"] is True
    # another thread count is another machine
    monkeypatch.setattr(widths, "machine_key", lambda: "another CPU | torch 0 | 3 threads")
    widths.padding_pays()
    assert len(calls) == 2
    assert len(json.loads((tmp_path / "groundup" / widths.CACHE_NAME).read_text())) == 2
    # the override wins over the cache
    monkeypatch.setattr(names, "PAD_OUTPUT", False)
    assert not widths.padding_pays()


def test_an_unreadable_cache_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setattr(names, "PAD_OUTPUT", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "groundup").mkdir()
    (tmp_path / "groundup" / widths.CACHE_NAME).write_text("not json{")
    monkeypatch.setattr(
        widths, "measure", lambda: {"narrow_s": 1.0, "padded_s": 1.0, "pays": False}
    )
    assert widths.padding_pays() is False


def test_measure_reports_both_timings():
    result = widths.measure(batch=8, reps=1)
    for key in ("narrow_s", "padded_s", "layer_s", "layer_padded_s"):
        assert result[key] > 0
    # decided on the layer's forward and backward, which is what a training step pays
    assert result["pays"] == (result["layer_s"] > result["layer_padded_s"] * widths.MARGIN)


def test_a_padded_run_saves_the_real_weights_and_the_same_model_json(
    tmp_path, monkeypatch, sample_raw
):
    """Train ten digits with and without padding: same files, same numbers (1e-5)."""
    from groundup.runs.config import TrainConfig
    from groundup.runs.saved import load_run, save_run
    from groundup.runs.training import train

    config = TrainConfig(digits=tuple(range(10)), model="net", hidden=(32,), epochs=1, device="cpu")
    runs = {}
    for pad in ("0", "1"):
        monkeypatch.setattr(names, "PAD_OUTPUT", pad == "1")
        trained = train(config)
        assert trained.model.layers[-1].pad_to == (16 if pad == "1" else 0)
        runs[pad] = load_run(save_run(tmp_path / pad, trained))
    plain, padded = runs["0"], runs["1"]
    meta = [{k: v for k, v in r.meta.items() if k not in ("created", "history", "final")}
            for r in (plain, padded)]  # fmt: skip
    assert meta[0] == meta[1]
    assert padded.model.layers[-1].weight.shape == (32, 10)
    for name, p in plain.model.state_dict().items():
        torch.testing.assert_close(padded.model.state_dict()[name], p, rtol=0, atol=1e-5)
    for key in ("valid_loss", "accuracy"):
        assert abs(plain.meta["final"][key] - padded.meta["final"][key]) <= 1e-5
