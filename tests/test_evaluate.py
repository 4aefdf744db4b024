"""Evaluating a saved run: confusion counts by hand, and agreement with training."""

from __future__ import annotations

import pytest
import torch

from groundup.runs.evaluate import confusion_matrix, evaluate_run
from groundup.runs.saved import load_run


def test_confusion_matrix_by_hand():
    true = torch.tensor([0, 1, 0, 0, 1, 2])
    pred = torch.tensor([0, 1, 1, 0, 1, 0])
    # rows: true class; columns: predicted
    assert confusion_matrix(pred, true, 3).tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_evaluate_agrees_with_the_last_epoch_of_training(linear_run):
    run_dir, history = linear_run
    result = evaluate_run(load_run(run_dir))
    assert result["source"] == "sample" and result["digits"] == [2, 9]
    assert result["n"] == 200
    assert result["accuracy"] == pytest.approx(history[-1]["accuracy"], abs=1e-4)
    assert result["loss"] == pytest.approx(history[-1]["valid_loss"], abs=1e-4)
    cm = result["confusion"]
    assert [sum(row) for row in cm] == [100, 100]  # 100 twos, 100 nines
    assert (cm[0][0] + cm[1][1]) / 200 == pytest.approx(result["accuracy"])


def test_evaluate_on_an_explicit_source(linear_run):
    result = evaluate_run(load_run(linear_run[0]), "sample")
    assert result["n"] == 200
