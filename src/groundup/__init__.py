"""groundup: the seven steps of learning, on real handwritten digits.

The article's names are the public API::

    from groundup import init_params, linear1, mnist_loss, calc_grad, BasicOptim, Learner

Names are imported on first use (PEP 562), so that `import groundup` and the
command line's `--help` do not pay for importing torch until something needs it.
The table below says where each name is defined.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "GroundupError": "errors",
    "DataError": "errors",
    "UsageError": "errors",
    "RunError": "errors",
    "DivergenceError": "errors",
    # data sources and tensors
    "RawData": "sources",
    "load_source": "sources",
    "Dataset": "data",
    "DataLoader": "data",
    "DataLoaders": "data",
    "load_data": "data",
    "parse_digits": "data",
    # the seven steps, by hand
    "init_params": "steps",
    "linear1": "steps",
    "calc_grad": "steps",
    "train_epoch": "steps",
    "validate_epoch": "steps",
    "train_model": "steps",
    # losses and metrics
    "sigmoid": "losses",
    "mnist_loss": "losses",
    "cross_entropy": "losses",
    "batch_accuracy": "losses",
    # models
    "Module": "models",
    "Linear": "models",
    "ReLU": "models",
    "Sequential": "models",
    "linear_model": "models",
    "simple_net": "models",
    "mlp": "models",
    "cnn": "models",
    "fit_means": "models",
    "build_model": "models",
    # optimizers and the loop
    "BasicOptim": "optim",
    "Momentum": "optim",
    "Adam": "optim",
    "Learner": "learner",
    "TrainConfig": "config",
    "make_learner": "training",
    "train": "training",
    # experiments
    "compare": "experiments",
    "lr_find": "experiments",
    # saved runs
    "save_run": "runs",
    "load_run": "runs",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'groundup' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"groundup.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from groundup.config import TrainConfig
    from groundup.data import DataLoader, DataLoaders, Dataset, load_data, parse_digits
    from groundup.errors import DataError, DivergenceError, GroundupError, RunError, UsageError
    from groundup.experiments import compare, lr_find
    from groundup.learner import Learner
    from groundup.losses import batch_accuracy, cross_entropy, mnist_loss, sigmoid
    from groundup.models import (
        Linear,
        Module,
        ReLU,
        Sequential,
        build_model,
        cnn,
        fit_means,
        linear_model,
        mlp,
        simple_net,
    )
    from groundup.optim import Adam, BasicOptim, Momentum
    from groundup.runs import load_run, save_run
    from groundup.sources import RawData, load_source
    from groundup.steps import (
        calc_grad,
        init_params,
        linear1,
        train_epoch,
        train_model,
        validate_epoch,
    )
    from groundup.training import make_learner, train
