"""Training FLOPs from the models' shapes, checked against hand counts."""

from __future__ import annotations

import pytest

from groundup.learn.compute import flops_text, forward_flops, training_flops
from groundup.learn.models import MeanClassifier, cnn, linear_model, mlp


def test_linear_and_net_forward_flops_are_2_in_out_per_layer():
    assert forward_flops(linear_model(n_out=10)) == 2 * 784 * 10
    assert forward_flops(linear_model(n_out=1)) == 2 * 784
    assert forward_flops(mlp((256, 128), n_out=10)) == 2 * (784 * 256 + 256 * 128 + 128 * 10)


def test_cnn_forward_flops_count_each_output_position():
    # conv 1->32 3x3 on 28x28, conv 32->64 3x3 on 14x14, linear 64*7*7 -> 10
    by_hand = 2 * (1 * 9 * 32 * 28 * 28) + 2 * (32 * 9 * 64 * 14 * 14) + 2 * (64 * 49 * 10)
    assert forward_flops(cnn(10, (32, 64))) == by_hand


def test_training_flops_are_three_forward_passes_per_sample_per_epoch():
    model = mlp((30,), n_out=10)
    fwd = 2 * (784 * 30 + 30 * 10)
    assert training_flops(model, n_train=4000, epochs=20) == 3 * fwd * 4000 * 20
    assert training_flops(MeanClassifier(10), n_train=4000, epochs=1) == 4000 * 784


def test_counting_leaves_the_model_in_training_mode():
    model = cnn()
    forward_flops(model)
    assert model.training


@pytest.mark.parametrize(
    ("flops", "text"), [(15680, "15.7 kFLOP"), (1.86e12, "1.86 TFLOP"), (3e6, "3 MFLOP")]
)
def test_flops_text(flops, text):
    assert flops_text(flops) == text


def test_a_padded_output_layer_is_counted_at_its_real_width(monkeypatch):
    from groundup.learn import names
    from groundup.learn.widths import pad_output_layer

    monkeypatch.setattr(names, "PAD_OUTPUT", True)
    model = mlp((32,), n_out=10)
    assert pad_output_layer(model)
    assert forward_flops(model) == 2 * (784 * 32 + 32 * 10)  # not the padded 16 columns
    assert model.layers[-1].pad_to == 16  # counting leaves the model as it was


def test_a_cnn_in_another_dtype_is_counted_in_it():
    assert forward_flops(cnn(10, (4, 8)).double()) == forward_flops(cnn(10, (4, 8)))
