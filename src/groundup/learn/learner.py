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
          after_batch                                   (the loss is kept, on the device)
        validate: loss and metrics summed over the validation set, on the device
        after_validate                                  (the epoch's sums, not yet read)
        read the epoch back, once; the divergence guard
        after_epoch                                     step 7, a callback may stop
      after_fit

A callback is any object with some of the methods named in `EVENTS` (`before_fit`,
`before_batch`, `after_backward`, `after_epoch`, ...), each taking the learner.
The `Recorder` that fills `learn.history` (in `recorder.py`) is one; so is the
progress bar; so is data-parallel training (`groundup.distributed.DataParallel`).
A callback stops training by setting `learn.stop = True`.

Nothing inside an epoch waits for the device: each batch's loss, and the
validation sums, stay where they were computed (on a GPU, the GPU runs ahead of
Python), and the epoch is read back in one copy at its end.

The divergence guard is built in: at the end of each epoch, the first batch whose
loss diverged (`first_divergent_batch`) stops training with a `DivergenceError`
naming the epoch, batch and learning rate, and the weights are put back as they
were at the end of the last good epoch. A loss diverges when it is NaN or infinite,
or when it stays finite but grows past `DIVERGENCE_FACTOR` times where it started
(the first batch's loss, at least 1, so that a near-zero start is no hair trigger):
a learning rate of 1e30 gives a loss of 1e29, finite and meaningless.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from groundup.data.tensors import DataLoader, DataLoaders
from groundup.errors import DivergenceError, UsageError
from groundup.learn.losses import batch_accuracy, mnist_loss
from groundup.learn.optim import BasicOptim
from groundup.learn.recorder import Metric, Recorder, means_of, metric_name, summed

EVENTS = (
    "before_fit",
    "before_epoch",
    "before_batch",
    "after_pred",
    "after_loss",
    "after_backward",
    "after_step",
    "after_batch",
    "after_validate",
    "after_epoch",
    "after_fit",
)

# A loss over this many times the starting loss is divergence, as NaN is: a model
# that learns never comes near it (cross-entropy starts at ln(C), about 2.3 for ten
# classes), and one whose steps overshoot reaches it within an epoch.
DIVERGENCE_FACTOR = 100.0


def first_divergent_batch(losses: Sequence[float], limit: float = math.inf) -> int | None:
    """Which batch of an epoch diverged first (0-based), or None: the one place that
    decides what counts as divergence, given the epoch's batch losses.

    A loss diverges when it is not a finite number, NaN (inf - inf, 0 * inf) or
    infinite, or when it is above `limit` (see `Learner.loss_limit`). The weights it
    then steps to are broken, and every later loss with them.
    """
    for i, loss in enumerate(losses):
        if not math.isfinite(loss) or loss > limit:
            return i
    return None


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
    if name.startswith("cuda") and not torch.cuda.is_available():
        # cuda and cuda:N alike: there is no GPU to number
        raise UsageError(f"--device {name} was asked for, but PyTorch sees no CUDA GPU here")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError("--device mps was asked for, but PyTorch sees no Apple GPU here")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise UsageError(f"unknown device {name!r}: choose auto, cpu, cuda or mps")
    try:
        device = torch.device(name)
    except RuntimeError:  # "cuda:x"
        raise UsageError(f"unknown device {name!r}: a GPU is named cuda or cuda:N") from None
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if device.index >= count:
            raise UsageError(
                f"--device {name} was asked for, but PyTorch sees {count} CUDA GPU(s) here"
                + (f": choose cuda:0 to cuda:{count - 1}" if count else "")
            )
    return device


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
        # the epoch as it is kept on the device, then read back once (see _read_epoch)
        self.batch_losses: Tensor = torch.zeros(0)  # (n_batches,) each batch's loss
        self.batch_rows: list[int] = []  # the rows in each batch
        self.batch_lrs: list[float] = []  # the learning rate each batch stepped with
        # sums over rows (`summed`), keyed by what they sum: {("valid_loss",
        # "valid_accuracy"): (3,) [loss sum, accuracy sum, rows], ...}
        self.sums: dict[tuple[str, ...], Tensor] = {}
        self.means: dict[str, float] = {}  # each of them over its rows, read back
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
                self._run("after_validate")
                self._read_epoch()
                self.epoch_count += 1
                self._keep_good()
                self._run("after_epoch")
                if self.stop:
                    break
        finally:
            self._run("after_fit")
        return self

    def _train_epoch(self) -> None:
        """Steps 2 to 5 on every mini-batch. Each batch's loss stays on the device:
        nothing here waits for it (see `_read_epoch`)."""
        assert self.opt is not None
        self._set_mode(True)
        losses: list[Tensor] = []
        self.batch_rows, self.batch_lrs = [], []
        for i, batch in enumerate(self.dls.train):
            self.batch, (self.xb, self.yb) = i, batch
            del batch  # the learner's attributes are the batch's only references (below)
            self._run("before_batch")  # may replace self.xb, self.yb (augmentation)
            self.batch_rows.append(self.xb.shape[0])  # (faster than len() on a tensor)
            self.batch_lrs.append(self.opt.lr)  # the rate this batch steps with
            losses.append(self._one_batch(self.xb, self.yb))
            self._run("after_batch")
            # let go of this batch before the loader cuts the next one, so that its
            # memory is reused rather than freshly mapped: 5% of a small model's epoch
            self.xb = self.yb = self.preds = self.loss = None
            if self.stop:
                break
        self.batch_losses = torch.stack(losses) if losses else torch.zeros(0, device=self.device)

    def _one_batch(self, xb: Tensor, yb: Tensor) -> Tensor:
        """Steps 2 to 5 on one mini-batch; returns the batch's loss, still on the device."""
        assert self.opt is not None
        self.xb, self.yb = xb, yb
        self.preds = self.model(xb)  # step 2
        self._run("after_pred")
        self.loss = self.loss_func(self.preds, yb)  # step 3
        self._run("after_loss")
        if self.loss.requires_grad:  # False for a model fitted without gradients (`mean`)
            self.loss.backward()  # step 4
            self._run("after_backward")  # the only moment each p.grad can be seen
            self.opt.step()  # step 5
            self._run("after_step")
            self.opt.zero_grad()
        return self.loss.detach()

    def _validate(self) -> None:
        self.sums = dict([self._sums_over(self.dls.valid)])

    def _read_epoch(self) -> None:
        """Read the epoch back from the device in one copy (the one wait per epoch),
        then guard: a diverged batch loss, or a validation loss that is not finite,
        stops training with the last good epoch's weights put back."""
        assert self.opt is not None
        n = len(self.batch_losses)
        values = torch.cat([self.batch_losses, *self.sums.values()]).tolist()
        losses, self.means = values[:n], means_of(self.sums, values[n:])
        rows = sum(self.batch_rows)
        self.train_loss = sum(x * b for x, b in zip(losses, self.batch_rows)) / max(rows, 1)
        self.valid_loss = self.means.get("valid_loss", math.nan)
        self.valid_metrics = {
            metric_name(m): self.means.get(f"valid_{metric_name(m)}", 0.0) for m in self.metrics
        }
        if self.start_loss is None and losses and math.isfinite(losses[0]):
            self.start_loss = losses[0]  # the same on every worker: summed by its callback
        bad = first_divergent_batch(losses, self.loss_limit)
        if bad is not None:
            self._diverged(losses[bad], f"batch {bad + 1}", self.batch_lrs[bad])
        if first_divergent_batch([self.valid_loss], self.loss_limit) is not None:
            # the epoch's last step broke the weights; without this check they
            # would be saved as the "last good" ones, or as the trained model
            lr = self.batch_lrs[-1] if self.batch_lrs else self.opt.lr
            self._diverged(self.valid_loss, "on the validation set", lr)

    def evaluate(self, dl: DataLoader) -> tuple[float, dict[str, float]]:
        """The loss and every metric over all of `dl`, each batch weighted by its size.

        (Under data-parallel training this is this worker's shard; the validation
        during `fit` is summed over the workers by their callback.)"""
        names, total = self._sums_over(dl)
        means = means_of({names: total}, total.tolist())
        metrics = {metric_name(m): means.get(f"valid_{metric_name(m)}", 0.0) for m in self.metrics}
        return means.get("valid_loss", math.nan), metrics

    def _sums_over(self, dl: DataLoader) -> tuple[tuple[str, ...], Tensor]:
        """The loss and metrics over all of `dl`, summed over its rows on the device
        (`summed`), and their names. Nothing is read back."""
        self._set_mode(False)
        names = ("valid_loss", *(f"valid_{metric_name(m)}" for m in self.metrics))
        total = None
        with torch.no_grad():
            for xb, yb in dl:
                preds = self.model(xb)
                means = [self.loss_func(preds, yb), *(m(preds, yb) for m in self.metrics)]
                batch = summed(means, xb.shape[0])
                total = batch if total is None else total.add_(batch)
        if total is None:  # no rows at all
            total = torch.zeros(len(names) + 1, device=self.device)
        return names, total

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
        from groundup.learn.optim import check_lr

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

    def _diverged(self, value: float, where: str, lr: float) -> None:
        with torch.no_grad():
            for p, good in zip(self._params, self._good):
                p.copy_(good)
        kept = f"after epoch {self.epoch_count}" if self.epoch_count else "before training"
        became = (
            f"became {value}"
            if not math.isfinite(value)
            else f"grew to {value:.4g}, over {DIVERGENCE_FACTOR:g} times its start "
            f"({self.start_loss:.4g}),"
        )
        what = (
            f"the loss {became} at epoch {self.epoch_count + 1}, {where}, with learning rate {lr:g}"
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
