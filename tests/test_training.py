"""From a TrainConfig to a trained run: defaults that work, reproducibility, GD against
SGD, the stopping options, and the run as one value."""

from __future__ import annotations

import pytest
import torch

from groundup.errors import SettingError
from groundup.learn.callbacks import EarlyStopping, TargetAccuracy
from groundup.runs.config import TrainConfig
from groundup.runs.training import make_learner, make_run, model_spec, train


def _fit(config: TrainConfig, dls=None, cbs=()):
    return make_run(config, dls=dls, cbs=cbs).fit().learner


def _numbers(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_defaults_reach_98_5_percent_for_both_models_on_seeds_0_to_4(make_dls):
    worst = {}
    for model in ("linear", "net"):
        accs = []
        for seed in range(5):
            learn = _fit(TrainConfig(model=model, seed=seed, device="cpu"), make_dls(seed=seed))
            accs.append(learn.history[-1]["accuracy"])
        worst[model] = min(accs)
    assert worst["linear"] >= 0.985, worst
    assert worst["net"] >= 0.985, worst


def test_articles_recipe_is_available(make_dls):
    run = make_run(TrainConfig(init="normal", std=1.0, device="cpu"), make_dls())
    learn = run.learner
    w = learn.model.weight
    assert w.std().item() == pytest.approx(1.0, rel=0.1)
    assert learn.model.bias.item() != 0.0  # the article draws the bias too
    assert (run.config.lr, run.config.epochs) == (1.0, 20)
    learn.fit(2, run.config.lr)
    assert len(learn.history) == 2


def test_a_trained_run_is_one_value():
    run = train(TrainConfig(epochs=2, device="cpu"))
    assert run.config.lr == 1.0 and run.config.epochs == 2  # resolved: every setting
    assert len(run.history) == 2 and run.history is run.learner.history
    assert run.spec.name == "linear" and run.spec.n_out == 1 and run.source == "sample"
    # the weights it started from are kept, and training moved them
    assert set(run.init_state) == set(run.model.state_dict())
    assert not torch.equal(run.init_state["weight"], run.model.weight.detach())
    assert not hasattr(run.learner, "config")  # nothing attached to the learner


def test_same_seed_same_numbers_and_weights(make_dls):
    a = _fit(TrainConfig(model="net", epochs=4, seed=3, device="cpu"), make_dls(seed=3))
    b = _fit(TrainConfig(model="net", epochs=4, seed=3, device="cpu"), make_dls(seed=3))
    assert _numbers(a.history) == _numbers(b.history)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_loading_the_data_from_the_config_is_seeded_too():
    a = _fit(TrainConfig(epochs=3, seed=1, device="cpu"))
    b = _fit(TrainConfig(epochs=3, seed=1, device="cpu"))
    assert _numbers(a.history) == _numbers(b.history)
    assert torch.equal(a.model.weight, b.model.weight)


def test_different_seed_different_run(make_dls):
    a = _fit(TrainConfig(model="net", epochs=3, seed=0, device="cpu"), make_dls(seed=0))
    b = _fit(TrainConfig(model="net", epochs=3, seed=1, device="cpu"), make_dls(seed=1))
    assert not torch.equal(a.model.layers[0].weight, b.model.layers[0].weight)
    assert _numbers(a.history) != _numbers(b.history)


def test_shuffles_differ_between_seeds_in_every_epoch(make_dls):
    # seed 1 must not replay seed 0's shuffles one epoch late
    a, b = make_dls(seed=0).train, make_dls(seed=1).train
    firsts_a = [next(iter(a))[0] for _ in range(4)]
    firsts_b = [next(iter(b))[0] for _ in range(4)]
    for xa in firsts_a:
        for xb in firsts_b:
            assert not torch.equal(xa, xb)


class CountSteps:
    def before_fit(self, learn):
        self.per_epoch = []

    def before_epoch(self, learn):
        self.per_epoch.append(0)

    def after_batch(self, learn):
        self.per_epoch[-1] += 1


def test_full_batch_takes_exactly_one_step_per_epoch(make_dls):
    gd, sgd = CountSteps(), CountSteps()
    learn = _fit(TrainConfig(batch_size="full", epochs=3, device="cpu"), make_dls(), [gd])
    _fit(TrainConfig(epochs=3, device="cpu"), make_dls(), [sgd])
    assert gd.per_epoch == [1, 1, 1]
    assert learn.opt.t == 3
    assert sgd.per_epoch == [4, 4, 4]  # ceil(800 / 256)


def test_stopping_options_become_callbacks(make_dls):
    learn = make_learner(TrainConfig(target_accuracy=0.9, patience=2, device="cpu"), make_dls())
    kinds = {type(cb) for cb in learn.cbs}
    assert {TargetAccuracy, EarlyStopping} <= kinds
    learn = make_learner(TrainConfig(device="cpu"), make_dls())
    assert not {TargetAccuracy, EarlyStopping} & {type(cb) for cb in learn.cbs}


def test_target_accuracy_stops_a_run(make_dls):
    learn = _fit(TrainConfig(target_accuracy=0.98, device="cpu"), make_dls())
    assert len(learn.history) < 20 and learn.history[-1]["accuracy"] >= 0.98


def test_model_spec_and_bad_settings():
    spec = model_spec(TrainConfig(model="net", hidden=[12]).resolved())
    assert (spec.name, spec.hidden, spec.n_out) == ("net", [12], 1)
    assert model_spec(TrainConfig(digits=(1, 2, 3)).resolved()).n_out == 3
    # a bad choice is refused when the config is made, before any data is loaded
    with pytest.raises(SettingError, match="opt must be one of"):
        TrainConfig(opt="lbfgs", device="cpu")
    with pytest.raises(SettingError, match="model must be one of"):
        TrainConfig(model="resnet", device="cpu")
