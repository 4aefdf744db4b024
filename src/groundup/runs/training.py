"""From a `TrainConfig` to a trained `Learner`: what `groundup train` and the web page run.

    config -> data (load_data) -> model (build_model, seeded) -> Learner (+ callbacks)
           -> fit -> save_run (model.safetensors + model.json)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from groundup.data.tensors import DataLoaders, load_data
from groundup.errors import UsageError
from groundup.learn.callbacks import EarlyStopping, OneCycle, TargetAccuracy
from groundup.learn.learner import Learner
from groundup.learn.losses import batch_accuracy, cross_entropy, mnist_loss
from groundup.learn.models import ModelSpec, build_model
from groundup.learn.optim import OPTIMIZERS
from groundup.runs.config import TrainConfig


def model_spec(config: TrainConfig) -> ModelSpec:
    """The model a config asks for: one output for a pair, one per class otherwise."""
    n_out = 1 if config.binary else config.n_classes
    return ModelSpec(
        name=config.model,
        hidden=list(config.hidden or [30]),
        n_out=n_out,
        init=config.init,
        std=config.std,
    )


def make_learner(
    config: TrainConfig,
    dls: DataLoaders | None = None,
    cbs: Iterable[Any] = (),
    rank: int = 0,
    world_size: int = 1,
) -> Learner:
    """Everything but the training: data, a seeded model, the optimizer and callbacks.

    The same config and seed always give the same initial weights and shuffles.
    """
    config.validate()
    if dls is None:
        dls = load_data(config.data, config.digits, config.batch_size, config.seed)
    # the ten-class defaults depend on how many training images there are
    config = config.resolved(n_train=len(dls.train.dataset))
    if config.opt not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {config.opt!r}: choose one of {', '.join(OPTIMIZERS)}")
    if config.full_batch:
        # GD: one batch holding the whole training set, so one step per epoch
        dls.train.batch_size = len(dls.train.dataset)
    torch.manual_seed(config.seed)
    model = build_model(model_spec(config))
    if config.model == "mean":
        # pixel similarity learns by averaging, in one pass, not by gradient steps
        model.fit_means(dls.train.dataset.x, dls.train.dataset.class_index())
    callbacks: list[Any] = []
    if config.schedule == "one-cycle":
        callbacks.append(OneCycle())
    elif config.schedule != "constant":
        raise UsageError(f"unknown schedule {config.schedule!r}: choose constant or one-cycle")
    if config.augment:
        from groundup.learn.augment import Augment

        callbacks.append(Augment(seed=config.seed))
    if config.target_accuracy is not None:
        callbacks.append(TargetAccuracy(config.target_accuracy))
    if config.patience is not None:
        callbacks.append(EarlyStopping(config.patience))
    if world_size > 1:
        # this process is one worker of a data-parallel job: it sees its share of every
        # batch, and the callback makes the workers train as one. It goes first (right
        # after the Recorder): every other callback then sees the whole batch's gradient
        from groundup.distributed import DataParallel, shard

        dls = shard(dls, rank, world_size)
        callbacks.insert(0, DataParallel())
    learn = Learner(
        dls,
        model,
        opt_func=OPTIMIZERS[config.opt],
        loss_func=mnist_loss if config.binary else cross_entropy,
        metrics=batch_accuracy,
        cbs=[*callbacks, *cbs],
        device=config.device,
        train_metrics=True,  # the reports and the web page draw train against valid
    )
    learn.config = config
    return learn


def train(
    config: TrainConfig, cbs: Iterable[Any] = (), rank: int = 0, world_size: int = 1
) -> Learner:
    """Build the learner for `config` and fit it: `train(TrainConfig()).history`.

    With `world_size` > 1, this process is worker `rank` of a data-parallel job that
    has already joined (`groundup.distributed.init_distributed`): it trains on its
    shard of every batch, and all workers end with the same weights.
    """
    learn = make_learner(config, cbs=cbs, rank=rank, world_size=world_size)
    return learn.fit(learn.config.epochs, learn.config.lr)
