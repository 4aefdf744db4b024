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
    "RawData": "data.sources",
    "load_source": "data.sources",
    "Dataset": "data.tensors",
    "DataLoader": "data.tensors",
    "DataLoaders": "data.tensors",
    "load_data": "data.tensors",
    "parse_digits": "data.tensors",
    # the seven steps, by hand
    "init_params": "learn.steps",
    "linear1": "learn.steps",
    "calc_grad": "learn.steps",
    "train_epoch": "learn.steps",
    "validate_epoch": "learn.steps",
    "train_model": "learn.steps",
    # losses and metrics
    "sigmoid": "learn.losses",
    "mnist_loss": "learn.losses",
    "cross_entropy": "learn.losses",
    "batch_accuracy": "learn.losses",
    # models
    "Module": "learn.models",
    "Linear": "learn.models",
    "ReLU": "learn.models",
    "Sequential": "learn.models",
    "linear_model": "learn.models",
    "simple_net": "learn.models",
    "mlp": "learn.models",
    "cnn": "learn.models",
    "fit_means": "learn.models",
    "build_model": "learn.models",
    # optimizers and the loop
    "BasicOptim": "learn.optim",
    "Momentum": "learn.optim",
    "Adam": "learn.optim",
    "Learner": "learn.learner",
    "TrainConfig": "runs.config",
    "make_learner": "runs.training",
    "train": "runs.training",
    # experiments
    "compare": "runs.experiments",
    "lr_find": "runs.lrfind",
    # saved runs
    "save_run": "runs.saved",
    "load_run": "runs.saved",
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
    from groundup.data.sources import RawData, load_source
    from groundup.data.tensors import DataLoader, DataLoaders, Dataset, load_data, parse_digits
    from groundup.errors import DataError, DivergenceError, GroundupError, RunError, UsageError
    from groundup.learn.learner import Learner
    from groundup.learn.losses import batch_accuracy, cross_entropy, mnist_loss, sigmoid
    from groundup.learn.models import (
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
    from groundup.learn.optim import Adam, BasicOptim, Momentum
    from groundup.learn.steps import (
        calc_grad,
        init_params,
        linear1,
        train_epoch,
        train_model,
        validate_epoch,
    )
    from groundup.runs.config import TrainConfig
    from groundup.runs.experiments import compare
    from groundup.runs.lrfind import lr_find
    from groundup.runs.saved import load_run, save_run
    from groundup.runs.training import make_learner, train
