"""What the report looks at: a saved run, its data, and its outputs before and after training.

    view = view_run("runs/demo-linear")     # the run, its data and both models' outputs
    view.accuracy(initial=True)             # what the random start scored
    confusion(view)                         # (C, C) counts on the validation set
    init_gradients(view)                    # how hard the first step pushed each parameter

`show/report.py` turns a `RunView` into HTML; `groundup figure` reads the same helpers.
The weights before training come from the run's init.safetensors, which every
saved run keeps (`save_run`); a run without it is refused with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from groundup.errors import RunError

if TYPE_CHECKING:
    from torch import Tensor

    from groundup.data.sources import RawData
    from groundup.data.tensors import Dataset
    from groundup.runs.saved import Run


@dataclass
class RunView:
    """A run with its validation images and its outputs before and after training.

    outputs, init_outputs: raw scores (N, 1) for a pair, (N, C) otherwise.
    probs, init_probs: (N, C) probabilities; true: (N,) each image's class position.
    """

    run: Run
    raw: RawData
    train: Dataset
    valid: Dataset
    init_model: Any
    outputs: Tensor
    init_outputs: Tensor
    probs: np.ndarray
    init_probs: np.ndarray
    true: np.ndarray

    @property
    def digits(self) -> tuple[int, ...]:
        return self.run.digits

    @property
    def source(self) -> str:
        """The data's name, for the figures' labels (Fashion-MNIST's classes by name)."""
        return self.raw.name

    @property
    def word(self) -> str:
        """What one label is called: "digit", or "class" for Fashion-MNIST."""
        from groundup.data.sources import class_word

        return class_word(self.source)

    def name(self, label: int) -> str:
        """Label `label` as a reader sees it: "3", or "3 Dress"."""
        from groundup.data.sources import class_name

        return class_name(self.source, label)

    def accuracy(self, initial: bool = False) -> float:
        p = self.init_probs if initial else self.probs
        return float((p.argmax(axis=1) == self.true).mean())

    def loss(self, initial: bool = False) -> float:
        """The run's own loss (its task's: mnist_loss for a pair) on the validation set."""
        out = self.init_outputs if initial else self.outputs
        return float(self.run.task.loss_func(out, self.valid.y))

    def first_images(self, per_digit: int) -> tuple[list[int], list[str]]:
        """The rows of the first `per_digit` training images of each digit, digit by
        digit, and each row's digit as text (the titles of a grid of them)."""
        picks: list[int] = []
        titles: list[str] = []
        idx = self.train.class_index()
        for pos, d in enumerate(self.digits):
            rows_of = (idx == pos).nonzero().flatten()[:per_digit].tolist()
            picks += rows_of
            titles += [self.name(d)] * len(rows_of)
        return picks, titles

    def init_stats(self) -> list[list[Any]]:
        """[name, shape as "784×1", mean, std] of each parameter before training."""
        rows = []
        for name, t in self.init_model.state_dict().items():
            a = t.detach().float()
            std = float(a.std()) if a.numel() > 1 else 0.0
            rows.append([name, "×".join(map(str, a.shape)), float(a.mean()), std])
        return rows

    def summary(self) -> list[list[Any]]:
        """[name, value] of the run's settings, its final scores, when it was made and
        the versions that made it."""
        meta = self.run.meta
        cfg = meta.get("config", {})
        final = meta.get("final", {})
        keys = "model digits data init opt lr epochs batch_size schedule seed".split()
        if cfg.get("init") == "normal":  # the only scheme that reads std
            keys.insert(4, "std")
        rows = []
        for k in (k for k in keys if k in cfg):
            v = cfg[k]
            if isinstance(v, list):  # digits: "2 9"
                v = " ".join(map(str, v))
            elif isinstance(v, float):
                v = f"{v:g}"
            rows.append([k, v])
        for k in ("accuracy", "valid_loss", "train_loss"):
            if k in final:
                rows.append([f"final {k}", final[k]])
        rows.append(["created", meta.get("created", "?")])
        versions = meta.get("versions", {})
        rows.append(["versions", ", ".join(f"{k} {v}" for k, v in versions.items())])
        return rows


def datasets(run: Run, source: str | None = None) -> tuple[RawData, Dataset, Dataset]:
    """The run's training and validation sets, rebuilt from its data source (or `source`)."""
    from groundup.data.sources import load_source
    from groundup.data.tensors import load_data

    raw = load_source(source or run.meta.get("data", {}).get("source", "sample"))
    dls = load_data(digits=run.digits, raw=raw)
    return raw, dls.train.dataset, dls.valid.dataset


def initial_model(run: Run) -> Any:
    """The model as it was before training, from the run's init.safetensors."""
    from groundup.learn.models import build_model
    from groundup.runs.saved import INIT_WEIGHTS, load_init_state

    state = load_init_state(run.path)
    if state is None:
        raise RunError(
            f"{run.path} has no {INIT_WEIGHTS}: the report needs the weights the run started "
            "from; train it again with this version of groundup"
        )
    model = build_model(run.spec)
    try:
        model.load_state_dict(state)
    except (ValueError, RuntimeError, KeyError) as err:
        raise RunError(f"{run.path}: the initial weights do not match the model ({err})") from None
    return model


def model_outputs(model: Any, x: Tensor) -> Tensor:
    """Raw outputs for x (N, 784), without gradients, in evaluation mode."""
    import torch

    if hasattr(model, "eval"):
        model.eval()
    with torch.no_grad():
        return model(x)


def view_run(run: Run | str | Path, source: str | None = None) -> RunView:
    """Load what the report needs: data, initial model, and both models' outputs."""
    from groundup.runs.saved import load_run

    if not hasattr(run, "model"):
        run = load_run(run)  # type: ignore[arg-type]
    raw, train, valid = datasets(run, source)  # type: ignore[arg-type]
    init_model = initial_model(run)  # type: ignore[arg-type]
    out = model_outputs(run.model, valid.x)  # type: ignore[union-attr]
    init_out = model_outputs(init_model, valid.x)
    return RunView(
        run=run,  # type: ignore[arg-type]
        raw=raw,
        train=train,
        valid=valid,
        init_model=init_model,
        outputs=out,
        init_outputs=init_out,
        probs=run.task.probabilities(out).numpy(),  # type: ignore[union-attr]
        init_probs=run.task.probabilities(init_out).numpy(),  # type: ignore[union-attr]
        true=valid.class_index().numpy(),
    )


def confusion(view: RunView) -> np.ndarray:
    """(C, C) counts on the validation set, rows the true digit (groundup.runs.evaluate's)."""
    import torch

    from groundup.runs.evaluate import confusion_matrix

    pred = torch.from_numpy(view.probs.argmax(axis=1))
    return confusion_matrix(pred, torch.from_numpy(view.true), len(view.digits)).numpy()


def init_gradients(view: RunView) -> dict[str, float]:
    """The size (L2 norm) of each parameter's gradient at the initial weights, with the
    loss over the whole training set: how hard step 4 pushes at the very start."""
    model = initial_model(view.run)
    if not any(p.requires_grad for p in model.parameters()):
        return {}
    if hasattr(model, "train"):
        model.train()
    loss = view.run.task.loss_func(model(view.train.x), view.train.y)
    if not loss.requires_grad:
        return {}
    loss.backward()
    return {
        name: float(p.grad.norm()) for name, p in model.named_parameters() if p.grad is not None
    }
