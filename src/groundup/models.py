"""Step 2, predicting: the models, built from scratch on tensors.

`Linear` is the article's `linear1` with its weights kept together; `ReLU` is its
`res.max(tensor(0.0))`; `Sequential` chains layers. `simple_net` is the article's
two-layer net::

    def simple_net(xb):
        res = xb @ w1 + b1          # (B, 784) @ (784, 30) -> (B, 30)
        res = res.max(tensor(0.0))  # ReLU
        res = res @ w2 + b2         # (B, 30) @ (30, 1) -> (B, 1)
        return res

Each model has `parameters()`, like PyTorch's, and `state_dict()` for saving.
A `Learner` takes these or any `torch.nn.Module`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from groundup.errors import UsageError
from groundup.init import init_bias, init_weights


class Module:
    """The base of our layers: finds its parameters, saves and loads them.

    A parameter is any tensor attribute that requires grad; a sub-layer is any
    attribute that is a Module, or a list of them. That is the whole mechanism.
    """

    training: bool = True

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(f"{prefix}{name}.")
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield from item.named_parameters(f"{prefix}{name}.{i}.")

    def parameters(self) -> list[Tensor]:
        return [p for _, p in self.named_parameters()]

    def state_dict(self) -> dict[str, Tensor]:
        return {name: p.detach() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        own = dict(self.named_parameters())
        if set(own) != set(state):
            missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
            raise ValueError(f"parameters do not match: missing {missing}, unexpected {extra}")
        with torch.no_grad():
            for name, p in own.items():
                if p.shape != state[name].shape:
                    raise ValueError(
                        f"{name}: saved shape {tuple(state[name].shape)}, "
                        f"model expects {tuple(p.shape)}"
                    )
                p.copy_(state[name])

    def to(self, device: torch.device | str) -> Module:
        """Move every parameter to `device`, in place (the tensors stay leaves)."""
        with torch.no_grad():
            for _, p in self.named_parameters():
                p.data = p.data.to(device)
        return self

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)


class Linear(Module):
    """y = x @ w + b, the article's `linear1` as a layer.

    x: (B, n_in); weight: (n_in, n_out), laid out as the article's (784, 1) so that
    `x @ weight` needs no transpose; bias: (n_out,). Returns (B, n_out).
    """

    def __init__(self, n_in: int, n_out: int, init: str = "kaiming", std: float = 1.0) -> None:
        self.weight = init_weights(n_in, n_out, init, std)  # (n_in, n_out)
        self.bias = init_bias(n_out, init, std)  # (n_out,)

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight + self.bias  # (B, n_in) @ (n_in, n_out) -> (B, n_out)

    def __repr__(self) -> str:
        n_in, n_out = self.weight.shape
        return f"Linear({n_in}, {n_out})"


class ReLU(Module):
    """relu(x) = max(x, 0): negatives become zero, positives pass unchanged.

    The article's `res.max(tensor(0.0))`. Its derivative is 1 where x > 0, else 0.
    """

    def forward(self, x: Tensor) -> Tensor:
        return x.clamp_min(0.0)

    def __repr__(self) -> str:
        return "ReLU()"


class Sequential(Module):
    """Layers applied one after another: f_n(...f_2(f_1(x)))."""

    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"


def linear_model(n_in: int = 784, n_out: int = 1, init: str = "kaiming", std: float = 1.0) -> Linear:
    """The article's first model: one linear layer, 784 pixels -> 1 score (or n_out)."""
    return Linear(n_in, n_out, init, std)


def simple_net(
    hidden: int = 30, n_in: int = 784, n_out: int = 1, init: str = "kaiming", std: float = 1.0
) -> Sequential:
    """The article's two-layer net: Linear(784, 30) -> ReLU -> Linear(30, 1)."""
    return mlp((hidden,), n_in, n_out, init, std)


def mlp(
    hidden: Sequence[int], n_in: int = 784, n_out: int = 1, init: str = "kaiming", std: float = 1.0
) -> Sequential:
    """A stack of Linear + ReLU pairs, then a last Linear: 784 -> h1 -> h2 ... -> n_out."""
    sizes = [n_in, *hidden]
    layers: list[Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [Linear(a, b, init, std), ReLU()]
    layers.append(Linear(sizes[-1], n_out, init, std))
    return Sequential(*layers)


@dataclass
class ModelSpec:
    """What is needed to rebuild a model: saved in a run's model.json."""

    name: str = "linear"  # "linear" | "net" (and the ten-digit models, see MODELS)
    hidden: list[int] = field(default_factory=lambda: [30])  # hidden widths for "net"
    n_in: int = 784
    n_out: int = 1  # 1 for a pair (sigmoid), else the number of classes (softmax)
    init: str = "kaiming"
    std: float = 1.0  # only used by init "normal"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def _build_linear(spec: ModelSpec) -> Module:
    return linear_model(spec.n_in, spec.n_out, spec.init, spec.std)


def _build_net(spec: ModelSpec) -> Module:
    return mlp(spec.hidden, spec.n_in, spec.n_out, spec.init, spec.std)


# model name -> builder; the ten-digit models add themselves here
MODELS: dict[str, Any] = {"linear": _build_linear, "net": _build_net}


def build_model(spec: ModelSpec) -> Any:
    """Build a fresh model from its spec (weights drawn from torch's generator)."""
    builder = MODELS.get(spec.name)
    if builder is None:
        raise UsageError(f"unknown model {spec.name!r}: choose one of {', '.join(MODELS)}")
    return builder(spec)
