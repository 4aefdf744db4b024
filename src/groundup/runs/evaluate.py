"""Evaluating a saved run: accuracy, loss and confusion counts on a validation set."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from groundup.data.tensors import Dataset, require_digits, to_tensors
from groundup.runs.saved import Run


def confusion_matrix(pred_class: Tensor, true_class: Tensor, n_classes: int) -> Tensor:
    """(C, C) int64 counts: row = true class, column = predicted class.

    pred_class, true_class: (N,) int64 class positions. The total is N.
    """
    flat = true_class * n_classes + pred_class  # (N,)
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def evaluate_run(run: Run, source: str | None = None) -> dict[str, Any]:
    """Accuracy, loss and confusion counts of `run` on the validation split of `source`
    (by default, the source it was trained on)."""
    from groundup.data.sources import load_source
    from groundup.learn.losses import cross_entropy, mnist_loss

    source = source or run.meta.get("data", {}).get("source", "sample")
    raw = load_source(source)
    require_digits(raw, run.digits)
    valid = Dataset(*to_tensors(raw.valid_images, raw.valid_labels, run.digits), run.digits)
    with torch.no_grad():
        if hasattr(run.model, "eval"):
            run.model.eval()
        out = run.model(valid.x)
        loss = mnist_loss(out, valid.y) if run.binary else cross_entropy(out, valid.y)
    probs = run.predict_proba(valid.x)  # (N, C)
    pred = probs.argmax(dim=1)
    true = valid.class_index()
    cm = confusion_matrix(pred, true, len(run.digits))
    return {
        "source": raw.name,
        "digits": list(run.digits),
        "n": len(valid),
        "accuracy": round(float((pred == true).float().mean()), 4),
        "loss": round(float(loss), 4),
        "confusion": cm.tolist(),
    }
