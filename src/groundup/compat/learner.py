"""fastai's `SGD` and `Learner`, on groundup's optimizer base and training loop.

`Learner(dls, model, opt_func=SGD, loss_func=mnist_loss, metrics=batch_accuracy)`
then `learn.fit(15, 0.1)` trains with groundup's `Learner` (the seven steps, the
divergence guard) and shows the table a fastai reader expects, one row per epoch:

    epoch  train_loss  valid_loss  batch_accuracy  time
    0      0.412519    0.366128    0.835000        00:00

In Jupyter it is an HTML table that grows row by row; elsewhere the same table as
text on stdout. `fit` returns None, as fastai's does, so a notebook does not show
the Learner a second time. groundup's own `groundup.Learner` stays silent: the table
is this adapter's, for readers of the article.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from torch import Tensor

from groundup.errors import UsageError
from groundup.learn.learner import Learner as GroundupLearner
from groundup.learn.optim import Adam, BasicOptim
from groundup.learn.recorder import metric_name

DEFAULT_LR = 1e-3  # fastai's default learning rate, for `Learner(...)` and `fit(n)`


class SGD(BasicOptim):
    """fastai's `SGD(params, lr, mom=0., wd=0.)`; with the defaults, plain SGD.

        wd:  w <- w * (1 - lr * wd)          decoupled weight decay, fastai's default form
        mom: v <- mom * v + g;  w <- w - lr * v   (mom=0: w <- w - lr * g)

    Without momentum the decay step equals L2 regularisation (torch's `weight_decay`);
    with it, the two differ, and this is fastai's (decoupled) form.
    """

    def __init__(self, params: Iterable[Tensor], lr: float, mom: float = 0.0, wd: float = 0.0):
        super().__init__(params, lr)
        if not 0.0 <= mom < 1.0:
            raise UsageError(f"SGD: mom must lie in [0, 1), not {mom}")
        if wd < 0:
            raise UsageError(f"SGD: wd must be 0 or more, not {wd}")
        self.mom, self.wd = mom, wd
        self.velocity: list[Tensor | None] = [None] * len(self.params)

    def update(self, i: int, p: Tensor, g: Tensor) -> None:
        if self.wd:
            p.mul_(1 - self.lr * self.wd)
        if self.mom:
            v = self.velocity[i]
            if v is None:
                v = self.velocity[i] = g.clone()  # the first step has no history: v = g
            else:
                v.mul_(self.mom).add_(g)
            g = v
        p.sub_(g, alpha=self.lr)


class Recorder:
    """`learn.recorder`: what the last `fit` recorded, as fastai's Recorder holds it.

    values:   one row per epoch, [train_loss, valid_loss, *metrics]
    losses:   the training loss of every batch
    iters:    the batch count at the end of each epoch (where valid losses are plotted)
    metric_names: the table's columns
    """

    def __init__(self) -> None:
        self.values: list[list[float]] = []
        self.losses: list[float] = []
        self.iters: list[int] = []
        self.metric_names: list[str] = []

    def before_fit(self, learn: Learner) -> None:
        self.values, self.losses, self.iters = [], [], []
        self.metric_names = [
            "epoch",
            "train_loss",
            "valid_loss",
            *(_display_name(m) for m in learn.metrics),
            "time",
        ]

    def after_batch(self, learn: Learner) -> None:
        self.losses.append(learn.loss.item())  # already read back once by the loop

    def after_epoch(self, learn: Learner) -> None:
        row = learn.history[-1]
        metrics = [row[metric_name(m)] for m in learn.metrics]
        self.values.append([row["train_loss"], row["valid_loss"], *metrics])
        self.iters.append(len(self.losses))

    def plot_loss(self, skip_start: int = 5, with_valid: bool = True) -> Any:
        """Draw the training loss of every batch (after the first `skip_start`) and the
        validation loss at the end of each epoch; returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if not self.losses:
            raise UsageError("plot_loss: nothing recorded yet; call learn.fit first")
        skip = min(skip_start, len(self.losses) - 1)
        _, ax = plt.subplots()
        ax.plot(range(skip, len(self.losses)), self.losses[skip:], label="train")
        if with_valid:
            valid = [v[1] for v in self.values]
            ax.plot(self.iters, valid, label="valid")
        ax.set_xlabel("batches")
        ax.set_ylabel("loss")
        ax.legend()
        return ax


class EpochTable:
    """Shows the recorder's rows as they come: HTML in Jupyter, text anywhere else."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def before_fit(self, learn: Learner) -> None:
        self.rows: list[list[str]] = []
        self.handle = None
        self.printed_header = False
        if _in_notebook():
            from IPython.display import HTML, display

            self.handle = display(HTML(self._html()), display_id=True)

    def after_epoch(self, learn: Learner) -> None:
        values = self.recorder.values[-1]
        seconds = learn.history[-1]["seconds"]
        epoch = len(self.recorder.values) - 1  # fastai counts each fit's epochs from 0
        self.rows.append([str(epoch), *(f"{v:.6f}" for v in values), _mmss(seconds)])
        if self.handle is not None:
            from IPython.display import HTML

            self.handle.update(HTML(self._html()))
            return
        widths = [max(len(n), 6) for n in self.recorder.metric_names]
        if not self.printed_header:
            header = zip(self.recorder.metric_names, widths)
            print("  ".join(n.ljust(w) for n, w in header).rstrip())
            self.printed_header = True
        print("  ".join(c.ljust(w) for c, w in zip(self.rows[-1], widths)).rstrip(), flush=True)

    def _html(self) -> str:
        head = "".join(f"<th>{n}</th>" for n in self.recorder.metric_names)
        body = "".join(
            "<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in self.rows
        )
        return (
            '<table border="1" class="dataframe"><thead><tr style="text-align: left;">'
            f"{head}</tr></thead><tbody>{body}</tbody></table>"
        )


class Learner(GroundupLearner):
    """fastai's `Learner(dls, model, loss_func, opt_func, lr, metrics, cbs)` on groundup's loop.

    - `opt_func` defaults to Adam and `lr` to 1e-3, as in fastai (groundup's Adam,
      with torch's betas and eps); the article passes `opt_func=SGD`.
    - `loss_func` has no default: fastai derives one from its data blocks, which
      groundup does not have. The article passes `loss_func=mnist_loss`.
    - `metrics` is one function or a list; each gets a column named after it.
    - `cbs` are groundup callbacks (objects with `before_fit`, `after_epoch`, ...).
    """

    def __init__(
        self,
        dls: Any,
        model: Any,
        loss_func: Callable[[Tensor, Tensor], Tensor] | None = None,
        opt_func: Callable[..., BasicOptim] = Adam,
        lr: float = DEFAULT_LR,
        metrics: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
        cbs: Iterable[Any] | None = None,
    ) -> None:
        if loss_func is None:
            raise UsageError(
                "Learner: pass loss_func=..., e.g. loss_func=mnist_loss; groundup does not "
                "derive a loss from the data as fastai's data blocks do"
            )
        self.recorder = Recorder()
        self._table = EpochTable(self.recorder)
        super().__init__(
            dls,
            model,
            opt_func=opt_func,
            loss_func=loss_func,
            metrics=[] if metrics is None else metrics,
            cbs=[self.recorder, self._table, *(cbs or ())],
        )
        self.lr_default = lr

    def fit(self, n_epoch: int, lr: float | None = None) -> None:  # type: ignore[override]
        """Train for `n_epoch` epochs at `lr` (the Learner's `lr` if not given).

        Returns None, as fastai's `fit` does; the epoch table has shown the results,
        and `learn.recorder.values` holds them.
        """
        super().fit(n_epoch, self.lr_default if lr is None else lr)

    @contextmanager
    def no_logging(self) -> Iterator[Learner]:
        """`with learn.no_logging(): learn.fit(...)` trains without showing the table."""
        at = self.cbs.index(self._table)
        del self.cbs[at]
        try:
            yield self
        finally:
            self.cbs.insert(at, self._table)


def _display_name(metric: Callable[..., Any]) -> str:
    """A metric's column: its own name, as fastai shows it (`batch_accuracy`)."""
    return getattr(metric, "__name__", type(metric).__name__)


def _mmss(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _in_notebook() -> bool:
    """True inside a Jupyter kernel, where HTML displays; False in a terminal or a script."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and hasattr(shell, "kernel")
