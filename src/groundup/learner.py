"""The Learner: the seven steps as one loop, with callbacks at its edges.

    fit(epochs, lr)
      before_fit
      for each epoch:                                   step 6, repeat
        before_epoch
        for each mini-batch (xb, yb):
          before_batch
          preds = model(xb)                             step 2, predict
          after_pred
          loss  = loss_func(preds, yb)                  step 3, loss
          after_loss
          loss.backward()                               step 4, gradient
          after_backward                                (p.grad is filled here only)
          opt.step()                                    step 5, step
          after_step
          opt.zero_grad()
          after_batch
        validate: loss and metrics over the whole validation set
        after_epoch                                     step 7, a callback may stop
      after_fit

A callback is any object with some of the methods named in `EVENTS` (`before_fit`,
`before_batch`, `after_backward`, `after_epoch`, ...), each taking the learner.
The `Recorder` that fills `learn.history` is one; so is the progress bar.
A callback stops training by setting `learn.stop = True`.

The divergence guard is built in: a NaN or infinite loss stops training with a
`DivergenceError` naming the epoch, batch and learning rate, and the weights are
put back as they were at the end of the last good epoch. So does a loss that stays
finite but grows far past where it started: an epoch whose training or validation
loss is over `DIVERGENCE_FACTOR` times the starting loss (the first batch's, with
the weights as initialised; at least 1, so that a near-zero start is no hair
trigger). A learning rate of 1e30 gives a loss of 1e29, finite and meaningless.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from groundup.data import DataLoader, DataLoaders
from groundup.distributed import sum_across_workers
from groundup.errors import DivergenceError, UsageError
from groundup.losses import batch_accuracy, mnist_loss
from groundup.optim import BasicOptim, all_reduce_gradients

EVENTS = (
    "before_fit",
    "before_epoch",
    "before_batch",
    "after_pred",
    "after_loss",
    "after_backward",
    "after_step",
    "after_batch",
    "after_epoch",
    "after_fit",
)

Metric = Callable[[Tensor, Tensor], Tensor]
# An epoch's loss over this many times the starting loss is divergence, as NaN is: a
# model that learns never comes near it (cross-entropy starts at ln(C), about 2.3 for
# ten classes), and one whose steps overshoot reaches it within an epoch.
DIVERGENCE_FACTOR = 100.0


def metric_name(metric: Metric) -> str:
    """`batch_accuracy` is reported as `accuracy`; other metrics by their own name."""
    name = getattr(metric, "__name__", type(metric).__name__)
    return name.removeprefix("batch_")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """`auto` takes a GPU when one is present (CUDA, then Apple's MPS), else the CPU."""
    name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():  # the same line for cuda and cuda:N
            raise UsageError(f"--device {name} was asked for, but PyTorch sees no CUDA GPU here")
        index = name.partition(":")[2]
        if index and not (index.isdigit() and int(index) < torch.cuda.device_count()):
            raise UsageError(
                f"--device {name}: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s) here, "
                "numbered from cuda:0"
            )
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError("--device mps was asked for, but PyTorch sees no Apple GPU here")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise UsageError(f"unknown device {name!r}: choose auto, cpu, cuda or mps")
    return torch.device(name)


class Recorder:
    """Records, per epoch: the training loss (mean over samples), the validation
    loss, each metric over the whole validation set, and the seconds taken.

    With `train_metrics=True`, also each metric on the training batches as they were
    seen (`train_accuracy`: while the weights were still moving, and on augmented
    images when augmentation is on). It is off by default, as in fastai's Recorder:
    it costs a tenth of a tiny model's epoch. `groundup train` and the web page turn
    it on, for their train-against-valid curves.
    """

    def __init__(self, train_metrics: bool = False) -> None:
        self.train_metrics = train_metrics
        self.train_preds: list[Tensor] = []
        self.train_targets: list[Tensor] = []

    def before_fit(self, learn: Learner) -> None:
        self.start = time.perf_counter()

    def before_epoch(self, learn: Learner) -> None:
        self.epoch_start = time.perf_counter()
        self.train_preds, self.train_targets = [], []

    def after_batch(self, learn: Learner) -> None:
        # keep the batch's outputs and score them all at once at the end of the epoch:
        # one metric call per epoch rather than per batch (a fifth of a small model's time)
        if not self.train_metrics:
            return
        if learn.yb.shape[0]:  # a data-parallel worker's share of a last batch may be empty
            self.train_preds.append(learn.preds.detach())
            self.train_targets.append(learn.yb)

    def after_epoch(self, learn: Learner) -> None:
        row: dict[str, Any] = {"epoch": learn.epoch_count, "train_loss": round(learn.train_loss, 6)}
        if self.train_metrics:
            row.update(self._train_scores(learn))
        row["valid_loss"] = round(learn.valid_loss, 6)
        row.update({k: round(v, 6) for k, v in learn.valid_metrics.items()})
        row["seconds"] = round(time.perf_counter() - self.epoch_start, 4)
        learn.history.append(row)

    def _train_scores(self, learn: Learner) -> dict[str, float]:
        """Each metric over the epoch's training batches, weighted by their sizes."""
        n = sum(len(t) for t in self.train_targets)
        sums = [0.0] * len(learn.metrics)
        if n:
            with torch.no_grad():
                preds, targets = torch.cat(self.train_preds), torch.cat(self.train_targets)
                sums = [float(m(preds, targets)) * n for m in learn.metrics]
        self.train_preds, self.train_targets = [], []
        if learn.dls.train.world_size > 1:
            n, *sums = sum_across_workers([n, *sums], learn.device)
        return {
            f"train_{metric_name(m)}": round(total / max(n, 1), 6)
            for m, total in zip(learn.metrics, sums)
        }


class Learner:
    """Trains `model` on `dls`: `Learner(dls, model).fit(epochs, lr)`.

    The defaults are the article's: `BasicOptim` (plain SGD), `mnist_loss` and
    `batch_accuracy`. `model` is one of ours (`simple_net()`, ...) or any
    `torch.nn.Module`; it and the data are moved to `device` once, up front.
    `train_metrics=True` also scores the metrics on the training batches (see
    `Recorder`).

    While a mini-batch trains, `xb`, `yb`, `preds` and `loss` hold it, for callbacks
    to read (or, before the prediction, replace); between batches they are None.
    """

    def __init__(
        self,
        dls: DataLoaders,
        model: Any,
        opt_func: Callable[..., BasicOptim] = BasicOptim,
        loss_func: Callable[[Tensor, Tensor], Tensor] = mnist_loss,
        metrics: Metric | Sequence[Metric] = batch_accuracy,
        cbs: Iterable[Any] = (),
        device: str | torch.device = "cpu",
        train_metrics: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        self.dls = dls.to(self.device) if self.device.type != "cpu" else dls
        self.model = model.to(self.device) if self.device.type != "cpu" else model
        self.opt_func = opt_func
        self.loss_func = loss_func
        self.metrics = [metrics] if callable(metrics) else list(metrics)
        self.cbs: list[Any] = [Recorder(train_metrics), *cbs]
        self.opt: BasicOptim | None = None
        self.history: list[dict[str, Any]] = []  # one row per epoch, filled by the Recorder
        self.epoch_count = 0  # epochs trained over all calls to fit
        self.stop = False
        self.stop_reason = ""  # set by whatever stopped training early
        self.train_loss = math.nan
        self.valid_loss = math.nan
        self.valid_metrics: dict[str, float] = {}
        self.start_loss: float | None = None  # the first batch's loss: the guard's yardstick
        self.xb: Any = None  # the current mini-batch, its predictions and loss (see above)
        self.yb: Any = None
        self.preds: Any = None
        self.loss: Any = None

    # -- the loop ---------------------------------------------------------------------------

    def fit(self, epochs: int, lr: float | None = None) -> Learner:
        """Train for up to `epochs` epochs at learning rate `lr`; returns self.

        A second `fit` continues from where the first stopped, with the same
        optimizer state (momentum, Adam's averages) and a new `lr` if given.
        """
        if not isinstance(epochs, int) or epochs < 1:
            raise UsageError(f"epochs must be a whole number of at least 1, not {epochs}")
        if self.opt is None:
            if lr is None:
                raise UsageError("the first fit needs a learning rate: fit(epochs, lr)")
            self.opt = self.opt_func(self.model.parameters(), lr)
        elif lr is not None:
            self.set_lr(lr)
        self._hooks = {e: [getattr(cb, e) for cb in self.cbs if hasattr(cb, e)] for e in EVENTS}
        self.stop, self.stop_reason = False, ""
        self.epochs = epochs
        # the divergence guard's copy of the weights, refreshed after each good epoch
        self._params = list(self.model.parameters())
        self._good = [p.detach().clone() for p in self._params]
        self._run("before_fit")
        try:
            for self.epoch in range(epochs):
                self._run("before_epoch")
                self._train_epoch()
                self._validate()
                if not math.isfinite(self.valid_loss):
                    # the epoch's last step broke the weights; without this check they
                    # would be saved as the "last good" ones, or as the trained model
                    self._diverged(self.valid_loss, "on the validation set")
                # the same losses on every worker (summed across them): all stop together
                if self.train_loss > self.loss_limit:
                    self._diverged(self.train_loss, "on the training set", grew=True)
                if self.valid_loss > self.loss_limit:
                    self._diverged(self.valid_loss, "on the validation set", grew=True)
                self.epoch_count += 1
                self._keep_good()
                self._run("after_epoch")
                if self.stop:
                    break
        finally:
            self._run("after_fit")
        return self

    def _train_epoch(self) -> None:
        self._set_mode(True)
        total, n = 0.0, 0
        for i, batch in enumerate(self.dls.train):
            self.batch, (self.xb, self.yb) = i, batch
            del batch  # the learner's attributes are the batch's only references (below)
            self._run("before_batch")  # may replace self.xb, self.yb (augmentation)
            loss = self._one_batch(self.xb, self.yb)
            b = self.xb.shape[0]  # rows in this batch (faster than len() on a tensor)
            total += loss * b
            n += b
            self._run("after_batch")
            # let go of this batch before the loader cuts the next one, so that its
            # memory is reused rather than freshly mapped: 5% of a small model's epoch
            self.xb = self.yb = self.preds = self.loss = None
            if self.stop:
                break
        first = self.epoch_count == 0
        if self.dls.train.world_size > 1:  # data-parallel: the mean over every worker's rows
            start = self.start_loss or 0.0
            if first:  # one yardstick for all: the mean of the workers' first losses
                total, n, start = sum_across_workers([total, n, start], self.device)
                self.start_loss = start / self.dls.train.world_size
            else:
                total, n = sum_across_workers([total, n], self.device)
        self.train_loss = total / max(n, 1)

    def _one_batch(self, xb: Tensor, yb: Tensor) -> float:
        """Steps 2 to 5 on one mini-batch; returns the batch's loss."""
        assert self.opt is not None
        self.xb, self.yb = xb, yb
        if xb.shape[0] == 0 and self.dls.train.world_size > 1:
            return self._empty_share()
        self.preds = self.model(xb)  # step 2
        self._run("after_pred")
        self.loss = self.loss_func(self.preds, yb)  # step 3
        self._run("after_loss")
        value = self.loss.item()
        if not math.isfinite(value):
            self._diverged(value)
        if self.start_loss is None:
            self.start_loss = value
        if self.loss.requires_grad:  # False for a model fitted without gradients (`mean`)
            self.loss.backward()  # step 4
            if self.dls.train.world_size > 1:  # data-parallel: the whole batch's gradient
                all_reduce_gradients(self.opt.params, len(xb))
            self._run("after_backward")  # the only moment each p.grad can be seen
            self.opt.step()  # step 5
            self._run("after_step")
            self.opt.zero_grad()
        return value

    def _empty_share(self) -> float:
        """This worker's share of a short last batch is empty (fewer rows than workers):
        it adds a zero gradient to the others' and takes the same step."""
        assert self.opt is not None
        if any(p.requires_grad for p in self.opt.params):
            all_reduce_gradients(self.opt.params, 0)
            self.opt.step()
            self.opt.zero_grad()
        return 0.0

    def _validate(self) -> None:
        self.valid_loss, self.valid_metrics = self.evaluate(self.dls.valid)

    def evaluate(self, dl: DataLoader) -> tuple[float, dict[str, float]]:
        """The loss and every metric over all of `dl`, each batch weighted by its size.

        With several workers, each evaluates its shard and the sums are added up."""
        self._set_mode(False)
        loss_sum, n = 0.0, 0
        sums = [0.0] * len(self.metrics)
        with torch.no_grad():
            for xb, yb in dl:
                b = len(xb)
                if b == 0:  # this worker's share of a short last batch: nothing to add
                    continue
                preds = self.model(xb)
                loss_sum += float(self.loss_func(preds, yb)) * b
                for i, m in enumerate(self.metrics):
                    sums[i] += float(m(preds, yb)) * b
                n += b
        if dl.world_size > 1:  # data-parallel: sums and counts over the whole validation set
            loss_sum, n, *sums = sum_across_workers([loss_sum, n, *sums], self.device)
        metrics = {metric_name(m): s / max(n, 1) for m, s in zip(self.metrics, sums)}
        return loss_sum / max(n, 1), metrics

    def get_preds(self, dl: DataLoader | None = None) -> tuple[Tensor, Tensor]:
        """Raw model outputs and targets for all of `dl` (the validation set by default)."""
        dl = dl or self.dls.valid
        self._set_mode(False)
        preds, targets = [], []
        with torch.no_grad():
            for xb, yb in dl:
                preds.append(self.model(xb))
                targets.append(yb)
        return torch.cat(preds).cpu(), torch.cat(targets).cpu()

    # -- helpers ----------------------------------------------------------------------------

    def set_lr(self, lr: float) -> None:
        """Change the learning rate, also while training runs (from a callback)."""
        from groundup.optim import check_lr

        if self.opt is None:
            raise UsageError("no optimizer yet: call fit first")
        self.opt.lr = check_lr(lr)

    @property
    def lr(self) -> float | None:
        return None if self.opt is None else self.opt.lr

    def _run(self, event: str) -> None:
        for hook in self._hooks[event]:
            hook(self)

    def _set_mode(self, training: bool) -> None:
        train = getattr(self.model, "train", None)
        if callable(train):
            train(training)

    def _keep_good(self) -> None:
        """Copy the weights into the guard's copy: one in-place copy per parameter."""
        with torch.no_grad():
            for good, p in zip(self._good, self._params):
                good.copy_(p)

    @property
    def loss_limit(self) -> float:
        """The loss past which training counts as diverged (see DIVERGENCE_FACTOR)."""
        if self.start_loss is None:
            return math.inf
        return DIVERGENCE_FACTOR * max(self.start_loss, 1.0)

    def _diverged(self, value: float, where: str = "", grew: bool = False) -> None:
        with torch.no_grad():
            for p, good in zip(self._params, self._good):
                p.copy_(good)
        assert self.opt is not None
        where = where or f"batch {self.batch + 1}"
        kept = f"after epoch {self.epoch_count}" if self.epoch_count else "before training"
        became = (
            f"grew to {value:.4g}, over {DIVERGENCE_FACTOR:g} times its start "
            f"({self.start_loss:.4g}),"
            if grew
            else f"became {value}"
        )
        what = (
            f"the loss {became} at epoch {self.epoch_count + 1}, {where}, "
            f"with learning rate {self.opt.lr:g}"
        )
        err = DivergenceError(
            f"{what}: try a smaller learning rate (the weights are kept as they were {kept})"
        )
        err.what = what  # for a caller that words the advice its own way (the CLI)
        raise err

    def __repr__(self) -> str:
        return (
            f"Learner({type(self.model).__name__}, "
            f"loss={getattr(self.loss_func, '__name__', '?')}, "
            f"opt={getattr(self.opt_func, '__name__', '?')}, {self.epoch_count} epochs trained)"
        )

    def _repr_html_(self) -> str:
        if not self.history:
            return f"<b>{self!r}</b>"
        cols = list(self.history[0])
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{_fmt(r[c])}</td>" for c in cols) + "</tr>" for r in self.history
        )
        return f"<b>{self!r}</b><table><tr>{head}</tr>{body}</table>"


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)
