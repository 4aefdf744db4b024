"""The Learner: the same numbers as the hand-written loop, what it records, its
callbacks, the divergence guard, devices and its notebook view."""

from __future__ import annotations

import math

import pytest
import torch

from groundup.errors import DivergenceError, UsageError
from groundup.learn.learner import Learner, resolve_device
from groundup.learn.losses import batch_accuracy, mnist_loss
from groundup.learn.models import Linear, linear_model, simple_net
from groundup.learn.optim import BasicOptim
from groundup.learn.recorder import metric_name
from groundup.learn.steps import init_params, linear1, train_model


class Events:
    """Records every event, with the epoch and batch it happened at."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def __getattr__(self, event: str):
        if not event.startswith(("before_", "after_")):
            raise AttributeError(event)
        return lambda learn: self.log.append(event)


class WeightsAfterEpoch:
    def __init__(self) -> None:
        self.saved: list[list[torch.Tensor]] = []

    def after_epoch(self, learn: Learner) -> None:
        self.saved.append([p.detach().clone() for p in learn.model.parameters()])


@pytest.mark.parametrize("lr", [1.0, 0.1])
def test_learner_gives_the_numbers_of_the_hand_written_loop(make_dls, lr):
    torch.manual_seed(0)
    weights, bias = init_params((28 * 28, 1), std=0.01), init_params(1, std=0.01)
    model = Linear(784, 1)
    model.weight = weights.detach().clone().requires_grad_()
    model.bias = bias.detach().clone().requires_grad_()

    by_hand = lambda xb: linear1(xb, weights, bias)  # noqa: E731
    hand = train_model(by_hand, make_dls(seed=0), 6, lr, [weights, bias])
    learn = Learner(make_dls(seed=0), model, opt_func=BasicOptim).fit(6, lr)

    assert [round(row["accuracy"], 4) for row in learn.history] == hand
    assert len(set(hand)) > 1  # the accuracy moved: the comparison says something
    # bit for bit, not merely close
    assert torch.equal(model.weight, weights) and torch.equal(model.bias, bias)


def test_history_rows_and_what_they_mean(dls_pair, pair_sets):
    _, valid = pair_sets
    per_batch: list[tuple[float, int]] = []
    per_batch_acc: list[float] = []

    class BatchLosses:
        def after_batch(self, learn):
            per_batch.append((learn.loss.item(), len(learn.xb)))
            per_batch_acc.append(batch_accuracy(learn.preds, learn.yb).item())

    torch.manual_seed(0)
    learn = Learner(dls_pair, linear_model(), cbs=[BatchLosses()], train_metrics=True)
    learn.fit(2, 1.0)
    assert [row["epoch"] for row in learn.history] == [1, 2]
    row = learn.history[-1]
    assert list(row) == [
        "epoch",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "accuracy",
        "seconds",
    ]
    # the training loss is a mean over samples (the last batch holds 32, not 256)
    last = per_batch[4:]
    assert [n for _, n in last] == [256, 256, 256, 32]
    by_sample = sum(loss * n for loss, n in last) / 800
    assert row["train_loss"] == pytest.approx(by_sample, abs=1e-6)
    # accuracy on the training batches as they were seen, weighted by batch size
    acc_by_sample = sum(a * n for a, (_, n) in zip(per_batch_acc[4:], last)) / 800
    assert row["train_accuracy"] == pytest.approx(acc_by_sample, abs=1e-6)
    # valid loss and accuracy over the whole validation set at once
    with torch.no_grad():
        out = learn.model(valid.x)
    assert row["valid_loss"] == pytest.approx(mnist_loss(out, valid.y).item(), abs=1e-6)
    assert row["accuracy"] == pytest.approx(batch_accuracy(out, valid.y).item(), abs=1e-6)
    assert row["seconds"] >= 0


def test_training_set_metrics_are_opt_in(make_dls):
    """By default (as in fastai's Recorder) the metrics are scored on the validation
    set only; the training batches' scores cost a tenth of a tiny model's epoch."""
    torch.manual_seed(0)
    plain = Learner(make_dls(), linear_model()).fit(1, 1.0).history[-1]
    assert list(plain) == ["epoch", "train_loss", "valid_loss", "accuracy", "seconds"]
    torch.manual_seed(0)
    both = Learner(make_dls(), linear_model(), train_metrics=True).fit(1, 1.0).history[-1]
    assert 0.5 < both["train_accuracy"] <= 1
    # the same training either way: scoring the batches does not touch the weights
    assert {k: v for k, v in both.items() if k not in ("train_accuracy", "seconds")} == {
        k: v for k, v in plain.items() if k != "seconds"
    }


def test_metrics_are_weighted_by_batch_size(make_dls, pair_sets):
    _, valid = pair_sets
    dls = make_dls(batch_size=64)  # 200 valid images: batches of 64, 64, 64 and 8
    torch.manual_seed(0)
    learn = Learner(dls, linear_model()).fit(1, 0.05)
    loss, metrics = learn.evaluate(dls.valid)
    with torch.no_grad():
        out = learn.model(valid.x)
    assert metrics["accuracy"] == pytest.approx(batch_accuracy(out, valid.y).item(), abs=1e-6)
    assert loss == pytest.approx(mnist_loss(out, valid.y).item(), abs=1e-6)


def test_callbacks_see_every_event_in_order(make_dls):
    events = Events()
    torch.manual_seed(0)
    Learner(make_dls(batch_size=400), linear_model(), cbs=[events]).fit(2, 1.0)
    core = ("before_fit", "before_epoch", "before_batch", "after_batch", "after_epoch", "after_fit")
    seen = [e for e in events.log if e in core]
    epoch = ["before_epoch", "before_batch", "after_batch", "before_batch", "after_batch"]
    assert seen == ["before_fit", *epoch, "after_epoch", *epoch, "after_epoch", "after_fit"]


def test_a_callback_can_stop_training(dls_pair):
    class StopAfterTwo:
        def after_epoch(self, learn):
            if learn.epoch_count == 2:
                learn.stop = True

    torch.manual_seed(0)
    learn = Learner(dls_pair, linear_model(), cbs=[StopAfterTwo()]).fit(10, 1.0)
    assert len(learn.history) == 2


def test_fit_again_continues_and_lr_can_change(dls_pair):
    torch.manual_seed(0)
    learn = Learner(dls_pair, linear_model()).fit(2, 1.0)
    learn.fit(1, 0.5)
    assert [row["epoch"] for row in learn.history] == [1, 2, 3]
    assert learn.lr == 0.5
    learn.set_lr(0.25)
    assert learn.opt.lr == 0.25
    for bad in (0, -1, float("nan"), "fast"):
        with pytest.raises(UsageError, match="learning rate"):
            learn.set_lr(bad)
    with pytest.raises(UsageError, match="epochs"):
        learn.fit(0)


def test_first_fit_needs_a_learning_rate(dls_pair):
    with pytest.raises(UsageError, match="learning rate"):
        Learner(dls_pair, linear_model()).fit(1)
    with pytest.raises(UsageError, match="above 0"):
        Learner(dls_pair, linear_model()).fit(1, 0.0)


def test_learner_accepts_a_torch_module(dls_pair):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 30), torch.nn.ReLU(), torch.nn.Linear(30, 1))
    learn = Learner(dls_pair, model).fit(5, 0.5)
    assert learn.history[-1]["accuracy"] >= 0.95
    preds, targets = learn.get_preds()
    assert preds.shape == (200, 1) and targets.shape == (200, 1)


def test_metric_names():
    assert metric_name(batch_accuracy) == "accuracy"
    assert metric_name(mnist_loss) == "mnist_loss"


# -- the divergence guard ---------------------------------------------------------------------


def nan_at(epoch: int, batch: int):
    """mnist_loss, except NaN at one (epoch, batch), both counted from 1 in training."""
    calls = {"n": 0}

    def loss(preds, targets):
        out = mnist_loss(preds, targets)
        if torch.is_grad_enabled():  # training, not validation
            calls["n"] += 1
            if calls["n"] == (epoch - 1) * 4 + batch:  # 4 training batches per epoch
                return out * float("nan")
        return out

    return loss


def test_divergence_names_epoch_batch_lr_and_keeps_the_last_good_weights(dls_pair):
    torch.manual_seed(0)
    saved = WeightsAfterEpoch()
    learn = Learner(dls_pair, simple_net(), loss_func=nan_at(epoch=2, batch=3), cbs=[saved])
    with pytest.raises(DivergenceError) as err:
        learn.fit(5, 0.1)
    message = str(err.value)
    assert "nan" in message
    assert "epoch 2" in message and "batch 3" in message
    assert "learning rate 0.1" in message and "smaller learning rate" in message
    assert err.value.what == message.split(": try")[0]  # the CLI words its own advice
    assert "\n" not in message
    # two batches of epoch 2 had moved the weights; they are put back as after epoch 1
    assert len(saved.saved) == 1 and len(learn.history) == 1
    for p, good in zip(learn.model.parameters(), saved.saved[0], strict=True):
        assert torch.equal(p, good)


def test_divergence_in_the_first_batch_keeps_the_initial_weights(dls_pair):
    torch.manual_seed(0)
    model = linear_model()
    start = [p.detach().clone() for p in model.parameters()]
    learn = Learner(dls_pair, model, loss_func=nan_at(epoch=1, batch=1))
    with pytest.raises(DivergenceError, match="epoch 1, batch 1.*before training"):
        learn.fit(3, 1.0)
    assert all(torch.equal(p, s) for p, s in zip(model.parameters(), start, strict=True))


def test_weights_broken_by_an_epochs_last_step_are_caught(dls_pair):
    """A finite loss whose step makes the weights NaN: only validation can see it."""

    class BreakLastStep:
        def after_batch(self, learn):
            if learn.epoch == 1 and learn.batch == len(learn.dls.train) - 1:
                with torch.no_grad():
                    learn.model.weight.fill_(float("inf"))

    torch.manual_seed(0)
    saved = WeightsAfterEpoch()
    learn = Learner(dls_pair, linear_model(), cbs=[saved, BreakLastStep()])
    with pytest.raises(DivergenceError, match="epoch 2, on the validation set"):
        learn.fit(3, 1.0)
    assert len(learn.history) == 1
    assert bool(torch.isfinite(learn.model.weight).all())
    assert torch.equal(learn.model.weight, saved.saved[0][0])


def test_a_real_blow_up_is_caught(dls_pair):
    # weights of size 1e38 overflow float32 in the first prediction: inf - inf = nan
    torch.manual_seed(0)
    learn = Learner(dls_pair, linear_model(init="normal", std=1e38))
    with pytest.raises(DivergenceError, match="epoch 1, batch 1"):
        learn.fit(2, 1.0)


# -- devices ----------------------------------------------------------------------------------


def test_resolve_device():
    auto = resolve_device("auto")
    if torch.cuda.is_available():
        assert auto.type == "cuda"
    else:
        assert auto.type in ("cpu", "mps")
        with pytest.raises(UsageError, match="no CUDA GPU"):
            resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_learner_on_a_gpu_matches_the_cpu(make_dls):
    """Runs the comparison on whatever GPU there is; on a CPU-only machine it checks that
    "auto" picked the CPU and gives the CPU's numbers."""
    device = resolve_device("auto")
    results = []
    for dev in ("cpu", device):
        torch.manual_seed(0)
        learn = Learner(make_dls(), simple_net(), device=dev).fit(3, 0.1)
        results.append(learn)
    cpu, other = results
    assert other.device == device
    for a, b in zip(cpu.history, other.history, strict=True):
        assert a["accuracy"] == pytest.approx(b["accuracy"], abs=0.011)  # at most 2 images
        assert a["valid_loss"] == pytest.approx(b["valid_loss"], abs=1e-3)


# -- the notebook view ------------------------------------------------------------------------


def test_repr_html_before_and_after_fit(dls_pair):
    torch.manual_seed(0)
    learn = Learner(dls_pair, linear_model())
    assert "Learner(Linear" in learn._repr_html_() and "<table>" not in learn._repr_html_()
    learn.fit(3, 1.0)
    html = learn._repr_html_()
    assert html.count("<tr>") == 1 + 3
    for column in ("epoch", "train_loss", "valid_loss", "accuracy", "seconds"):
        assert f"<th>{column}</th>" in html
    assert f"<td>{learn.history[-1]['accuracy']:.4f}</td>" in html
    assert "3 epochs trained" in html
    assert not math.isnan(learn.valid_loss)


# -- the epoch kept on the device, read back once -----------------------------------------------


def test_first_divergent_batch_decides_what_diverged():
    from groundup.learn.learner import first_divergent_batch

    assert first_divergent_batch([0.7, 0.5, 0.4]) is None
    assert first_divergent_batch([]) is None
    assert first_divergent_batch([0.7, float("nan"), float("inf")]) == 1
    assert first_divergent_batch([0.7, 0.5, float("-inf")]) == 2


def test_divergence_names_the_rate_of_the_batch_that_diverged(dls_pair):
    """The guard looks once per epoch, but names the rate the bad batch stepped with,
    not the rate a schedule had reached by the end of the epoch."""

    class RisingRate:
        def before_batch(self, learn):
            learn.opt.lr = 0.1 * (learn.batch + 1)

    torch.manual_seed(0)
    learn = Learner(dls_pair, simple_net(), loss_func=nan_at(epoch=1, batch=3), cbs=[RisingRate()])
    with pytest.raises(DivergenceError, match=r"epoch 1, batch 3, with learning rate 0\.3:"):
        learn.fit(2, 0.1)


def test_a_fit_stopped_within_an_epoch_is_not_taken_for_divergence(dls_pair):
    """Stopped after 2 of 4 batches (as the web page's stop button does): the epoch is
    read over the batches it ran."""

    class StopAtSecondBatch:
        def after_batch(self, learn):
            if learn.batch == 1:
                learn.stop = True

    seen = []

    class Losses:
        def after_batch(self, learn):
            seen.append((learn.loss.item(), len(learn.yb)))

    torch.manual_seed(0)
    learn = Learner(dls_pair, linear_model(), cbs=[Losses(), StopAtSecondBatch()]).fit(3, 1.0)
    assert len(learn.history) == 1 and len(learn.batch_rows) == 2
    expected = sum(loss * n for loss, n in seen) / sum(n for _, n in seen)
    assert learn.history[0]["train_loss"] == pytest.approx(expected, abs=1e-6)


def test_a_gpu_that_is_not_there_is_a_usage_error():
    if not torch.cuda.is_available():  # cuda and cuda:N alike: no GPU to number
        for name in ("cuda", "cuda:99"):
            with pytest.raises(UsageError, match=f"{name} was asked for, but PyTorch sees no CUDA"):
                resolve_device(name)
        return
    count = torch.cuda.device_count()
    with pytest.raises(UsageError, match=f"cuda:99 was asked for, but PyTorch sees {count} CUDA"):
        resolve_device("cuda:99")
    with pytest.raises(UsageError, match="a GPU is named cuda or cuda:N"):
        resolve_device("cuda:x")
