"""From a `TrainConfig` to a trained run: what `groundup train` and the web page run.

    config -> data (load_data) -> task (pair or many) -> model (build_model, seeded)
           -> Learner (+ callbacks) -> fit -> TrainedRun -> save_run(out, trained)

A `TrainedRun` is one value holding everything a run is: the resolved config, the
model's spec, the weights it started from, and the learner with its history.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from groundup.data.tensors import DataLoaders, load_data
from groundup.learn.callbacks import SCHEDULES, EarlyStopping, TargetAccuracy
from groundup.learn.compute import forward_flops
from groundup.learn.learner import Learner
from groundup.learn.losses import batch_accuracy
from groundup.learn.models import ModelSpec, build_model
from groundup.learn.optim import OPTIMIZERS
from groundup.learn.task import Task
from groundup.learn.widths import pad_output_layer
from groundup.runs.config import TrainConfig, default_threads


def model_spec(config: TrainConfig) -> ModelSpec:
    """The model a config asks for: its outputs are the task's (1 for a pair)."""
    return ModelSpec(
        name=config.model,
        hidden=list(config.hidden or ModelSpec().hidden),
        n_out=Task(config.digits).n_out,
        init=config.init,
        std=config.std,
    )


@dataclass
class TrainedRun:
    """A run as one value: `train()` returns it, `save_run(out, trained)` keeps it.

    Before `fit` it is a run ready to train; after it, a trained one."""

    config: TrainConfig  # resolved: every setting the run used
    learner: Learner
    init_state: dict[str, Tensor] | None = None  # the weights before training
    extra: dict[str, Any] | None = None  # more to keep in model.json (e.g. the workers)

    @property
    def spec(self) -> ModelSpec:
        return model_spec(self.config)

    @property
    def task(self) -> Task:
        return Task(self.config.digits)

    @property
    def model(self) -> Any:
        return self.learner.model

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.learner.history

    @property
    def source(self) -> str:
        return self.learner.dls.source

    def fit(self) -> TrainedRun:
        """Train for the config's epochs at its learning rate (steps 2 to 7)."""
        self.learner.fit(self.config.epochs, self.config.lr)
        return self


def make_run(
    config: TrainConfig,
    dls: DataLoaders | None = None,
    cbs: Iterable[Any] = (),
    rank: int = 0,
    world_size: int = 1,
) -> TrainedRun:
    """Everything but the training: data, a seeded model, the optimizer and callbacks.

    The same config and seed always give the same initial weights and shuffles.
    """
    if dls is None:
        dls = load_data(config.data, config.digits, config.batch_size, config.seed)
    # the defaults of three or more classes depend on how many training images there are
    config = config.resolved(n_train=len(dls.train.dataset))
    dls.set_batch_size(config.batch_size)  # loaders given by the caller follow the config too
    task = Task(config.digits)
    torch.manual_seed(config.seed)
    model = build_model(model_spec(config))  # step 1
    config = replace(config, threads=use_threads(config, model, world_size))
    pad_output_layer(model)  # a speed detail only: the weights stay (n_in, n_out)
    if config.model == "mean":
        # pixel similarity learns by averaging, in one pass, not by gradient steps
        model.fit_means(dls.train.dataset.x, dls.train.dataset.class_index())
    callbacks: list[Any] = [SCHEDULES[config.schedule]()]
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
        loss_func=task.loss_func,
        metrics=batch_accuracy,
        cbs=[*callbacks, *cbs],
        device=config.device,
        train_metrics=True,  # the reports and the web page draw train against valid
    )
    init_state = {k: v.detach().to("cpu", copy=True) for k, v in learn.model.state_dict().items()}
    return TrainedRun(config, learn, init_state)


def use_threads(config: TrainConfig, model: Any, world_size: int = 1) -> int:
    """Set and return the threads this run computes with: --threads if given, else
    `default_threads` (OMP_NUM_THREADS, or by the model's forward FLOPs per sample),
    with the machine's cores shared among the `world_size` workers on it.

    torch's thread count belongs to the process: the run keeps it after training."""
    threads = config.threads
    if threads is None:
        flops = forward_flops(model) if config.model != "mean" else 0
        cores = max(1, (os.cpu_count() or 1) // world_size)
        threads = default_threads(flops, cores, os.environ.get("OMP_NUM_THREADS"))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def make_learner(
    config: TrainConfig, dls: DataLoaders | None = None, cbs: Iterable[Any] = ()
) -> Learner:
    """The ready `Learner` of `make_run`, for code that drives the loop itself."""
    return make_run(config, dls, cbs).learner


def train(
    config: TrainConfig, cbs: Iterable[Any] = (), rank: int = 0, world_size: int = 1
) -> TrainedRun:
    """Build the run for `config` and fit it: `train(TrainConfig()).history`.

    With `world_size` > 1, this process is worker `rank` of a data-parallel job that
    has already joined (`groundup.distributed.init_distributed`): it trains on its
    shard of every batch, and all workers end with the same weights.
    """
    return make_run(config, cbs=cbs, rank=rank, world_size=world_size).fit()
