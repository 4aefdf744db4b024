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
from groundup.learn.init import SCHEMES, init_bias, init_weights
from groundup.learn.widths import padded_product


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
        """Move every parameter to `device`, in place: each stays the same tensor object
        (a leaf; an optimizer holding it keeps working), its data and gradient moved.

        `swap_tensors` rather than `p.data = ...`, which refuses some devices ("meta")."""
        for _, p in self.named_parameters():
            moved = p.detach().to(device).requires_grad_(p.requires_grad)
            if p.grad is not None:
                moved.grad = p.grad.to(device)
            torch.utils.swap_tensors(p, moved)
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

    `pad_to` (0: off) is a speed detail, not part of the model: on some CPUs a product
    with 10 columns is slower than one with 16, so the output layer may compute with its
    weight padded by zero columns and keep the first n_out (see learn/widths.py, which
    turns it on only where a measurement says it pays). The weights are unchanged.
    """

    pad_to: int = 0

    def __init__(self, n_in: int, n_out: int, init: str = "kaiming", std: float = 1.0) -> None:
        self.weight = init_weights(n_in, n_out, init, std)  # (n_in, n_out)
        self.bias = init_bias(n_out, init, std)  # (n_out,)

    def forward(self, x: Tensor) -> Tensor:
        if self.pad_to:  # the same numbers, through a wider product
            return padded_product(x, self.weight, self.pad_to) + self.bias
        return x @ self.weight + self.bias  # (B, n_in) @ (n_in, n_out) -> (B, n_out)

    def __repr__(self) -> str:
        n_in, n_out = self.weight.shape
        return f"Linear({n_in}, {n_out})"


class ReLU(Module):
    """relu(x) = max(x, 0): negatives become zero, positives pass unchanged.

    The article's `res.max(tensor(0.0))`. Its derivative is 1 where x > 0, else 0.
    `torch.relu` computes exactly that, forward and backward, in one pass each.
    """

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x)

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


def linear_model(
    n_in: int = 784, n_out: int = 1, init: str = "kaiming", std: float = 1.0
) -> Linear:
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


class MeanClassifier(Module):
    """fastbook's first model, pixel similarity: the class whose mean image is nearest.

    There is nothing to learn by gradient: `fit_means` averages the training
    images of each class, in one pass. The distance is the root mean squared
    difference, fastbook's RMSE, d_k(x) = sqrt(mean_j (x_j - mean_k,j)^2); its other
    distance, the mean absolute difference, is far worse on ten digits (66% against
    82% on the sample), because it punishes a stroke slightly off the mean too much.
    The scores are:

      - three or more classes: -d_k(x) for each class k, (B, C), so argmax is the nearest;
      - a pair: d_2(x) - d_1(x), (B, 1), above 0 when x is nearer the first digit.

    The scores are distances, not calibrated log-odds: read this model's accuracy,
    not its loss. It is the number every learned model must beat.
    """

    def __init__(self, n_classes: int, n_in: int = 784) -> None:
        self.binary = n_classes == 2
        self.means = torch.zeros(n_classes, n_in)  # (C, 784), filled by fit_means

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        # the means are the whole state (saved and loaded), though no gradient moves them
        yield prefix + "means", self.means

    def fit_means(self, x: Tensor, class_index: Tensor) -> MeanClassifier:
        """x: (N, 784); class_index: (N,) int64, each image's class position. Returns self."""
        for k in range(len(self.means)):
            members = x[class_index == k]  # (N_k, 784)
            if len(members) == 0:
                raise UsageError(f"class {k} has no training image to average")
            self.means[k] = members.mean(dim=0)
        return self

    def distances(self, x: Tensor) -> Tensor:
        """x: (B, 784). d_k(x) for each class k, (B, C): the RMSE to each mean image."""
        return torch.cdist(x, self.means.to(x)) / x.shape[1] ** 0.5  # (B, C)

    def forward(self, x: Tensor) -> Tensor:
        d = self.distances(x)  # (B, C)
        if self.binary:
            return (d[:, 1] - d[:, 0]).unsqueeze(1)  # (B, 1)
        return -d  # (B, C)

    def __repr__(self) -> str:
        return f"MeanClassifier({len(self.means)} classes)"


def fit_means(ds: Any) -> MeanClassifier:
    """The pixel-similarity model of a `Dataset` (its x and class_index()), fitted."""
    n_classes = len(ds.classes) or int(ds.class_index().max()) + 1
    return MeanClassifier(n_classes, ds.x.shape[1]).fit_means(ds.x, ds.class_index())


def cnn(
    n_out: int = 10, channels: Sequence[int] = (32, 64), init: str = "kaiming", std: float = 1.0
) -> Any:
    """A small convolutional net, built with `torch.nn`: (conv 3x3, max-pool 2, ReLU) twice,
    then one linear layer.

    x: (B, 784) -> (B, 1, 28, 28) -> (B, c1, 14, 14) -> (B, c2, 7, 7) -> (B, c2*49)
    -> (B, n_out). A convolution reuses one small filter at every position, so it
    sees strokes wherever they are, with far fewer weights than a linear layer.
    """
    from torch import nn

    c1, c2 = channels
    net = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),  # (B, 784) -> (B, 1, 28, 28)
        nn.Conv2d(1, c1, 3, padding=1),  # (B, c1, 28, 28)
        nn.MaxPool2d(2),  # (B, c1, 14, 14)
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1),  # (B, c2, 14, 14)
        nn.MaxPool2d(2),  # (B, c2, 7, 7)
        nn.ReLU(),
        nn.Flatten(),  # (B, c2 * 49)
        nn.Linear(c2 * 49, n_out),
    )
    # The pool comes before the ReLU: max(relu(a), relu(b)) = relu(max(a, b)), since
    # relu never reorders values, so the outputs and gradients are those of ReLU-then-pool,
    # bit for bit, while the ReLU (forward and backward) touches a quarter of the values.
    # A training step measured 1.4x faster on the sample (docs/benchmarks.md).
    for layer in net:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            _init_torch_layer(layer, init, std)
    # Speed only: filters stored channels-last (each pixel's channels side by side) let
    # the CPU's convolution kernels (oneDNN) skip reordering them at every call; the
    # numbers are the same up to float rounding. Measured 1.3-1.45x faster per epoch on
    # the sample (docs/benchmarks.md).
    return net.to(memory_format=torch.channels_last)


def _init_torch_layer(layer: Any, scheme: str, std: float) -> None:
    """Our initialisation schemes (see init.py) applied to a torch.nn layer's weights."""
    from torch import nn

    w, b = layer.weight, layer.bias
    fan_in = w[0].numel()  # inputs feeding one output unit
    with torch.no_grad():
        if scheme == "normal":
            nn.init.normal_(w, 0.0, std)
            nn.init.normal_(b, 0.0, std)
            return
        if scheme == "uniform":
            a = 1.0 / fan_in**0.5
            nn.init.uniform_(w, -a, a)
        elif scheme == "xavier":
            nn.init.xavier_normal_(w)
        elif scheme == "kaiming":
            nn.init.kaiming_normal_(w, nonlinearity="relu")
        elif scheme == "zeros":
            nn.init.zeros_(w)
        else:
            raise UsageError(f"unknown init {scheme!r}: choose one of {', '.join(SCHEMES)}")
        nn.init.zeros_(b)


def _build_linear(spec: ModelSpec) -> Module:
    return linear_model(spec.n_in, spec.n_out, spec.init, spec.std)


def _build_net(spec: ModelSpec) -> Module:
    return mlp(spec.hidden, spec.n_in, spec.n_out, spec.init, spec.std)


def _build_cnn(spec: ModelSpec) -> Any:
    return cnn(spec.n_out, CNN_CHANNELS, spec.init, spec.std)


def _build_mean(spec: ModelSpec) -> Module:
    # a pair has one output (sigmoid) but two class means
    return MeanClassifier(2 if spec.n_out == 1 else spec.n_out, spec.n_in)


CNN_CHANNELS = (32, 64)  # filters of the two convolutions

# model name (groundup.learn.names.MODELS, checked by a test) -> its builder
MODELS: dict[str, Any] = {
    "linear": _build_linear,
    "net": _build_net,
    "cnn": _build_cnn,
    "mean": _build_mean,
}


def build_model(spec: ModelSpec) -> Any:
    """Build a fresh model from its spec (weights drawn from torch's generator)."""
    builder = MODELS.get(spec.name)
    if builder is None:
        raise UsageError(f"unknown model {spec.name!r}: choose one of {', '.join(MODELS)}")
    return builder(spec)
