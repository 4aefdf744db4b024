"""Step 7, stopping (TargetAccuracy, EarlyStopping), the one-cycle schedule, and the
progress bar and per-epoch printer."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import pytest
import torch

from groundup.learn.callbacks import (
    EarlyStopping,
    EpochPrinter,
    OneCycle,
    ProgressBar,
    TargetAccuracy,
)
from groundup.learn.learner import Learner
from groundup.learn.losses import mnist_loss
from groundup.learn.models import linear_model


def test_target_accuracy_stops_at_the_first_epoch_reaching_it(dls_pair):
    torch.manual_seed(0)
    learn = Learner(dls_pair, linear_model(), cbs=[TargetAccuracy(0.97)]).fit(20, 1.0)
    accs = [row["accuracy"] for row in learn.history]
    assert len(accs) < 20
    assert accs[-1] >= 0.97 and all(a < 0.97 for a in accs[:-1])
    assert learn.stop_reason == "reached accuracy 0.97"


def test_early_stopping_counts_epochs_without_a_better_valid_loss():
    stop = EarlyStopping(patience=2)
    learn = SimpleNamespace(valid_loss=math.nan, stop=False, stop_reason="")
    stop.before_fit(learn)
    stopped_at = None
    for epoch, loss in enumerate([1.0, 0.8, 0.85, 0.7, 0.75, 0.72, 0.6], start=1):
        learn.valid_loss = loss
        stop.after_epoch(learn)
        if learn.stop:
            stopped_at = epoch
            break
    # 0.7 at epoch 4 is the best; 0.75 and 0.72 do not beat it: stop after epoch 6
    assert stopped_at == 6
    assert "2 epochs" in learn.stop_reason


def test_early_stopping_in_a_learner(dls_pair):
    # a loss that cannot improve: constant, with no gradient to follow
    def flat_loss(preds, targets):
        return mnist_loss(preds, targets) * 0 + 0.5

    torch.manual_seed(0)
    learn = Learner(dls_pair, linear_model(), loss_func=flat_loss, cbs=[EarlyStopping(3)])
    learn.fit(10, 1.0)
    # epoch 1 sets the best; epochs 2, 3 and 4 do not improve on it
    assert len(learn.history) == 4
    assert learn.stop_reason == "no better validation loss for 3 epochs"


def test_one_cycle_shape():
    sched = OneCycle()
    sched.max_lr = 1.0
    assert sched.lr_at(0.0) == pytest.approx(1 / 25)
    assert sched.lr_at(0.25) == pytest.approx(1.0)
    assert sched.lr_at(1.0) == pytest.approx(1e-4)
    assert sched.lr_at(0.125) == pytest.approx((1 / 25 + 1) / 2)  # halfway up the cosine
    ups = [sched.lr_at(p / 100) for p in range(26)]
    downs = [sched.lr_at(p / 100) for p in range(25, 101)]
    assert ups == sorted(ups) and downs == sorted(downs, reverse=True)


def test_one_cycle_drives_the_learners_lr(dls_pair):
    lrs = []

    class Watch:
        def after_batch(self, learn):
            lrs.append(learn.opt.lr)

    torch.manual_seed(0)
    learn = Learner(dls_pair, linear_model(), cbs=[OneCycle(), Watch()]).fit(4, 2.0)
    assert len(lrs) == 16
    assert lrs[0] == pytest.approx(2.0 / 25)
    assert max(lrs) == pytest.approx(2.0, rel=0.05)
    assert lrs[-1] < 0.1
    assert learn.opt.lr == 2.0  # put back after the fit


def test_progress_bar_counts_every_batch(dls_pair):
    from rich.console import Console

    bar = ProgressBar(Console(file=io.StringIO()))
    torch.manual_seed(0)
    Learner(dls_pair, linear_model(), cbs=[bar]).fit(2, 1.0)
    task = bar.progress.tasks[0]
    assert task.total == 8 and task.completed == 8
    assert task.fields["loss"] != "-"  # the loss was shown after the first epoch
    assert not bar.progress.live.is_started


@pytest.mark.parametrize(("delay", "shown"), [(0.0, True), (3600.0, False)])
def test_progress_bar_appears_only_on_long_work(dls_pair, delay, shown):
    from rich.console import Console

    bar = ProgressBar(Console(file=io.StringIO()), delay=delay)
    torch.manual_seed(0)
    Learner(dls_pair, linear_model(), cbs=[bar]).fit(1, 1.0)
    assert bar.shown is shown
    assert not bar.progress.live.is_started  # stopped (or never started) after the fit


@pytest.mark.parametrize("width", [120, 30])  # 30: narrower than a row, which must not fold
def test_epoch_printer_prints_a_header_and_a_row_per_epoch(dls_pair, width):
    from rich.console import Console

    out = io.StringIO()
    torch.manual_seed(0)
    learn = Learner(dls_pair, linear_model(), cbs=[EpochPrinter(Console(file=out, width=width))])
    learn.fit(3, 1.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "seconds"]
    cells = lines[3].split()
    assert cells[0] == "3"
    assert float(cells[3]) == pytest.approx(learn.history[-1]["accuracy"], abs=1e-4)


def test_epoch_table_cells_stay_ten_wide_for_a_diverging_loss():
    from groundup.learn.callbacks import _cell

    for value in (0.0289, 12345.6789, 2366026918787987184547270754304.0, -3.5e7, 40):
        cell = _cell(value)
        assert len(cell) == 10, cell
        assert float(cell) == pytest.approx(value, rel=1e-3, abs=1e-4)
