"""The task: what a choice of digits asks the model to do, decided in one place.

The article tells a 2 from a 9 with one output and a sigmoid; with three or more
digits there is one output per digit and a softmax. Everything that depends on that
choice is read from a `Task`:

  classes        the digits, in order; for a pair, the first is label 1 (the article's "2")
  n_out          1 for a pair, C = len(classes) otherwise
  labels         a pair: float32 (N, 1), 1.0 for the first class, 0.0 for the second;
                 otherwise int64 (N,), the class's position in `classes`
  loss           mnist_loss for a pair, cross_entropy otherwise
  probabilities  outputs (N, n_out) -> (N, C), each row the probability of each class:
                 a pair: p = sigmoid(s), giving [p, 1 - p]; otherwise softmax(s)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from groundup.learn.losses import cross_entropy, mnist_loss


@dataclass(frozen=True)
class Task:
    """A pair (the article's) or many classes, made from the digits to tell apart."""

    classes: tuple[int, ...]

    def __init__(self, classes: Sequence[int]) -> None:
        object.__setattr__(self, "classes", tuple(int(c) for c in classes))

    @property
    def binary(self) -> bool:
        """True for the article's pair: one output and a sigmoid."""
        return len(self.classes) == 2

    @property
    def kind(self) -> str:
        """'pair' or 'many': the key of the settings tables that depend on the task."""
        return "pair" if self.binary else "many"

    @property
    def n_out(self) -> int:
        """Outputs of the last layer: 1 for a pair, one per class otherwise."""
        return 1 if self.binary else len(self.classes)

    @property
    def loss_func(self) -> Callable[[Tensor, Tensor], Tensor]:
        """mnist_loss (sigmoid, distance to the target) for a pair; cross-entropy otherwise."""
        return mnist_loss if self.binary else cross_entropy

    def labels(self, positions: Tensor) -> Tensor:
        """positions: int64 (N,), each label's place in `classes`.

        Returns the targets the loss expects: float32 (N, 1) with 1.0 for the first
        class for a pair (the article's `tensor([1]*len(twos) + [0]*len(nines))`), or the
        positions themselves, int64 (N,), otherwise."""
        if self.binary:
            return (positions == 0).to(torch.float32).unsqueeze(1)  # (N, 1)
        return positions.to(torch.int64)  # (N,)

    def positions(self, labels: Tensor) -> Tensor:
        """The inverse of `labels`: int64 (N,), each target's place in `classes`."""
        if self.binary:
            return (1 - labels[:, 0]).long()  # 1.0 -> 0 (the first class), 0.0 -> 1
        return labels.long()

    def probabilities(self, outputs: Tensor) -> Tensor:
        """outputs: (N, n_out) raw scores. Returns (N, C), rows summing to 1."""
        if self.binary:
            p = torch.sigmoid(outputs[:, 0])  # (N,): the probability of the first class
            return torch.stack([p, 1 - p], dim=1)  # (N, 2)
        return torch.softmax(outputs, dim=1)  # (N, C)
