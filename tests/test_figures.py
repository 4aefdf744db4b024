"""The figures draw what they claim: each test reads the numbers back out of the Figure
(image arrays, line data, bar heights, texts) and compares them with a hand computation."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis.extra.numpy import arrays

from groundup.errors import UsageError
from groundup.learn.models import Linear, simple_net
from groundup.learn.task import Task
from groundup.runs.evaluate import confusion_matrix
from groundup.show import figures as F


def _images(fig):
    """Every AxesImage array of a figure (subfigures included), in drawing order."""
    return [np.asarray(im.get_array()) for ax in fig.get_axes() for im in ax.get_images()]


def _line(fig, label):
    for ax in fig.get_axes():
        for line in ax.get_lines():
            if line.get_label() == label:
                return line
    raise AssertionError(f"no line labelled {label!r}")


def _bar_heights(ax):
    return np.array([p.get_height() for p in ax.patches])


# -- the data -------------------------------------------------------------------------------


def test_digit_figure_shows_the_image():
    img = np.arange(784, dtype=np.float64).reshape(28, 28) / 783
    fig = F.digit_figure(torch.tensor(img.reshape(784)), "x")
    (shown,) = _images(fig)
    np.testing.assert_array_equal(shown, img)


def test_an_image_of_the_wrong_size_is_a_usage_error():
    with pytest.raises(UsageError, match="784 pixels"):
        F.digit_figure(np.zeros(100))


def _parse_table(html: str) -> list[list[int]]:
    rows = re.findall(r"<tr><th[^>]*>\d+</th>(.*?)</tr>", html)
    return [[int(v) for v in re.findall(r"<td[^>]*>(\d+)</td>", row)] for row in rows]


@settings(max_examples=25, deadline=None)
@given(arrays(np.uint8, (28, 28)))
@example(np.ones((28, 28), np.uint8))  # bytes that are all 0 or 1 are bytes, not [0, 1]
def test_pixel_table_html_holds_every_value_shaded_by_it(img):
    html = F.pixel_table_html(img)
    assert _parse_table(html) == img.tolist()
    # as MNIST stores it: a cell's background is its value, 0 black and 255 white
    cells = re.findall(r"background:rgb\((\d+),\1,\1\);color:#[0f]{3}\">(\d+)<", html)
    assert len(cells) == 784
    for shade, v in cells:
        assert int(shade) == int(v)


def test_pixel_table_html_has_a_title():
    html = F.pixel_table_html(np.zeros((28, 28)), title="the pixels of a <2>")
    assert "<caption" in html and "the pixels of a &lt;2&gt;</caption>" in html


def test_pictures_of_the_data_are_white_ink_on_black_and_say_so():
    img = np.zeros((28, 28))
    img[10:18, 12:16] = 1.0  # a stroke of full ink
    for fig in (F.digit_figure(img), F.digits_figure(np.stack([img, img]), ["a", "b"])):
        picture = fig.axes[0].images[0]
        assert picture.get_cmap().name == F.INK == "gray"  # 0 black, full ink white
        assert picture.get_clim() == (0.0, 1.0)
        assert any(F.INK_NOTE in t.get_text() for t in fig.texts)


def test_pixel_table_reads_the_model_scale_as_bytes_and_crops():
    img = np.zeros((28, 28))
    img[5, 6] = 1.0  # full ink on the [0, 1] scale
    table = _parse_table(F.pixel_table_html(img, rows=(4, 15), cols=(4, 22)))
    assert len(table) == 11 and all(len(r) == 18 for r in table)
    assert table[1][2] == 255 and sum(map(sum, table)) == 255


def test_pixel_table_figure_writes_each_value_in_its_cell():
    img = (np.arange(784) % 256).astype(np.uint8).reshape(28, 28)
    fig = F.pixel_table_figure(img)
    ax = fig.get_axes()[0]
    cells = {
        (round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text())
        for t in ax.texts
    }
    assert len(cells) == 784
    assert all(cells[(r, c)] == img[r, c] for r in range(28) for c in range(28))
    np.testing.assert_array_equal(_images(fig)[0], img)


# -- the idea -------------------------------------------------------------------------------


def test_steps_figure_names_the_seven_steps_in_order_with_a_loop_back():
    fig = F.steps_figure()
    ax = fig.get_axes()[0]
    boxes = sorted((t.get_position()[0], t.get_text()) for t in ax.texts if t.get_gid() == "step")
    assert [name for _, name in boxes] == [
        "init",
        "predict",
        "loss",
        "gradient",
        "step",
        "repeat",
        "stop",
    ]
    x = {name: pos for pos, name in boxes}
    (loop,) = [t for t in ax.texts if t.get_gid() == "loop"]
    # the arrow starts under "repeat" and points back at "predict"
    assert loop.xyann[0] == x["repeat"] and loop.xy[0] == x["predict"]


def test_descent_path_follows_the_update_rule_and_the_steps_shrink():
    xs = F.descent_path(x0=1.5, lr=0.2, steps=6)
    for a, b in zip(xs[:-1], xs[1:], strict=True):
        assert b == pytest.approx(a - 0.2 * 2 * a)
    step_sizes = np.abs(np.diff(xs))
    assert np.all(np.diff(step_sizes) < 0)


def test_descent_figure_plots_those_points_on_y_equals_x_squared():
    fig = F.descent_figure(x0=-2.0, lr=0.1, steps=5)
    line = _line(fig, "steps")
    x, y = line.get_xdata(), line.get_ydata()
    expected = [-2.0]
    for _ in range(5):
        expected.append(expected[-1] - 0.1 * 2 * expected[-1])
    np.testing.assert_allclose(x, expected)
    np.testing.assert_allclose(y, np.array(expected) ** 2)


@pytest.mark.parametrize("lr", [0.0, -1.0])
def test_descent_refuses_a_learning_rate_that_is_not_positive(lr):
    with pytest.raises(UsageError, match="learning rate"):
        F.descent_path(1.0, lr, 3)


def test_sigmoid_figure_plots_one_over_one_plus_e_to_the_minus_x():
    line = _line(F.sigmoid_figure(-50, 50), "sigmoid")
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(y, torch.sigmoid(torch.tensor(x)).numpy(), rtol=1e-12)


# -- a run ----------------------------------------------------------------------------------


def test_curves_figure_plots_the_history():
    history = [
        {"epoch": e, "train_loss": 1 / e, "valid_loss": 1.5 / e, "accuracy": 1 - 0.5 / e}
        for e in range(1, 6)
    ]
    fig = F.curves_figure(history)
    ax_loss, ax_acc = fig.get_axes()
    train, valid = ax_loss.get_lines()
    assert (train.get_label(), valid.get_label()) == ("train", "valid")
    np.testing.assert_allclose(train.get_ydata(), [1 / e for e in range(1, 6)])
    np.testing.assert_allclose(valid.get_ydata(), [1.5 / e for e in range(1, 6)])
    accuracy = ax_acc.get_lines()[0].get_ydata()
    np.testing.assert_allclose(accuracy, [1 - 0.5 / e for e in range(1, 6)])
    with pytest.raises(UsageError):
        F.curves_figure([])


def test_pair_weight_map_pixels_are_the_weights():
    torch.manual_seed(0)
    model = Linear(784, 1)
    fig = F.weights_figure(model.weight, (2, 9), model.bias)
    (shown,) = _images(fig)
    np.testing.assert_array_equal(shown, model.weight.detach().numpy()[:, 0].reshape(28, 28))
    # one symmetric scale: white is exactly zero
    im = fig.get_axes()[0].get_images()[0]
    lo, hi = im.get_clim()
    assert lo == -hi == -np.abs(model.weight.detach().numpy()).max()
    assert '"2"' in fig.get_axes()[0].get_title() and '"9"' in fig.get_axes()[0].get_title()


def test_ten_class_weight_maps_are_one_per_digit():
    torch.manual_seed(1)
    w = torch.randn(784, 10)
    fig = F.weights_figure(w, tuple(range(10)))
    shown = _images(fig)
    assert len(shown) == 10
    for c in range(10):
        np.testing.assert_array_equal(shown[c], w[:, c].numpy().reshape(28, 28))


def test_neuron_images_and_second_layer_bars_are_the_weights():
    torch.manual_seed(2)
    net = simple_net()
    w1 = net.layers[0].weight.detach().numpy()  # (784, 30)
    w2 = net.layers[2].weight.detach().numpy()  # (30, 1)
    fig = F.layers_figure(net, (2, 9))
    shown = _images(fig)
    assert len(shown) == 30
    for j in range(30):
        np.testing.assert_array_equal(shown[j], w1[:, j].reshape(28, 28))
    bars = [ax for ax in fig.get_axes() if ax.get_title() == "second layer"]
    (ax,) = bars
    np.testing.assert_allclose([p.get_width() for p in ax.patches], w2[:, 0])
    with pytest.raises(UsageError, match="simple_net"):
        F.layers_figure(Linear(784, 1))


def test_activation_bars_are_the_layer_outputs_by_hand():
    torch.manual_seed(3)
    net = simple_net()
    x = torch.rand(784)
    fig = F.activations_figure(net, x, (2, 9))
    axes = fig.get_axes()
    w1, b1 = net.layers[0].weight.detach(), net.layers[0].bias.detach()
    w2, b2 = net.layers[2].weight.detach(), net.layers[2].bias.detach()
    pre = x @ w1 + b1  # (30,)
    post = pre.clamp_min(0)
    score = post @ w2 + b2  # (1,)
    np.testing.assert_allclose(_bar_heights(axes[1]), pre.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_bar_heights(axes[2]), post.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_bar_heights(axes[3]), score.numpy(), rtol=1e-5, atol=1e-6)
    p = torch.sigmoid(score).item()
    np.testing.assert_allclose(_bar_heights(axes[4]), [p, 1 - p], rtol=1e-5)


def test_confusion_figure_counts_every_validation_image(pair_sets):
    _, valid = pair_sets
    torch.manual_seed(5)
    model = Linear(784, 1)
    probs = Task((2, 9)).probabilities(model(valid.x).detach()).numpy()
    cm = confusion_matrix(torch.from_numpy(probs.argmax(1)), valid.class_index(), 2)
    fig = F.confusion_figure(cm, (2, 9))
    (shown,) = _images(fig)
    assert shown.sum() == len(valid) == 200
    np.testing.assert_array_equal(shown, cm.numpy())
    texts = [int(t.get_text()) for t in fig.get_axes()[0].texts]
    assert sorted(texts) == sorted(cm.flatten().tolist())


def test_top_losses_ranks_the_most_confident_mistakes_first():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.45, 0.55], [0.05, 0.95], [0.6, 0.4]])
    true = np.array([0, 0, 0, 0, 1])
    # mistakes: rows 1, 2, 3 (true 0, said 1) and 4 (true 1, said 0);
    # probability given to the truth: 0.2, 0.45, 0.05, 0.4 -> highest loss first
    assert F.top_losses(probs, true, k=9).tolist() == [3, 1, 4, 2]
    assert F.top_losses(probs, true, k=2).tolist() == [3, 1]
    assert F.top_losses(probs, true, k=9, mistakes_only=False).tolist() == [3, 1, 4, 2, 0]


def test_top_losses_figure_shows_those_images_with_what_was_said():
    images = np.stack([np.full(784, i / 10) for i in range(5)])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.45, 0.55], [0.05, 0.95], [0.6, 0.4]])
    true = np.array([0, 0, 0, 0, 1])
    fig = F.top_losses_figure(images, probs, true, (2, 9), k=2)
    shown = _images(fig)
    assert [s[0, 0] for s in shown] == [0.3, 0.1]
    titles = [t.get_text() for t in fig.get_axes()[0].texts]
    assert titles == ["said 9 (0.95), is 2", "said 9 (0.80), is 2"]
    none = F.top_losses_figure(images[:1], probs[:1], true[:1], (2, 9))
    assert "no mistakes" in none.get_axes()[0].texts[0].get_text()


def test_predictions_figure_counts_what_the_model_says():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    fig = F.predictions_figure(probs, np.array([0, 0, 1]), (2, 9))
    ax_bar = fig.get_axes()[1]
    np.testing.assert_array_equal(_bar_heights(ax_bar), [2, 1])
    assert "33.3% right" in fig.get_suptitle()


def test_weight_histogram_counts_every_weight():
    before = {"w": torch.zeros(50), "b": torch.zeros(3)}
    after = {"w": torch.linspace(-1, 1, 50), "b": torch.ones(3)}
    fig = F.weight_histogram_figure(before, after)
    ax_w = fig.get_axes()[0]
    assert sum(_bar_heights(ax_w)) == 100  # 50 before + 50 after


def test_save_figure_writes_png_or_svg_by_suffix(tmp_path):
    fig = F.sigmoid_figure()
    png = F.save_figure(fig, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = F.save_figure(fig, tmp_path / "sub" / "s.svg")
    assert b"<svg" in svg.read_bytes()[:500]
    with pytest.raises(UsageError, match=".png or .svg"):
        F.save_figure(fig, tmp_path / "s.pdf")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["s.png", "s.svg"]


def test_importing_figures_does_not_import_matplotlib():
    code = "import sys, groundup.show.figures; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_layers_figure_orders_neurons_by_distance_moved_and_has_scales():
    import torch

    from groundup.learn.models import simple_net

    torch.manual_seed(0)
    init = simple_net()
    model = simple_net()
    model.load_state_dict(init.state_dict())
    with torch.no_grad():  # neuron 7 moves most, then 3; the rest stay at their start
        model.layers[0].weight[:, 7] += 1.0
        model.layers[0].weight[:, 3] += 0.5
    fig = F.layers_figure(model, init=init)
    neurons = fig.subfigs[0]
    captions = [t.get_text() for t in neurons.axes[0].texts]
    assert captions[0] == "7: moved 28.00" and captions[1] == "3: moved 14.00"
    assert "all neurons" in neurons._suptitle.get_text()
    assert len(neurons.axes) == 2  # the grid and its colour bar
    from groundup.learn.models import mlp

    ten = F.layers_figure(mlp([256, 128], n_out=10))
    assert "neurons 0-29 of 256" in ten.subfigs[0]._suptitle.get_text()
    assert len(ten.subfigs[1].axes) == 2  # the second-layer map and its colour bar


# -- Fashion-MNIST: its labels are classes of clothes, not digits ----------------------------

FASHION = ("0 T-shirt/top", "1 Trouser", "2 Pullover", "3 Dress", "4 Coat", "5 Sandal",
           "6 Shirt", "7 Sneaker", "8 Bag", "9 Ankle boot")  # fmt: skip


def _texts(fig):
    """Every piece of text a reader sees: titles, axis labels, tick labels, captions."""
    from matplotlib.text import Text

    found = [t.get_text() for t in fig.findobj(Text)]
    for ax in fig.get_axes():
        found += [t.get_text() for t in (*ax.get_xticklabels(), *ax.get_yticklabels())]
    return [t for t in found if t]


def _fashion_figures(source):
    """Each figure that shows a label, drawn for all ten labels (and the pair 0 v 9)."""
    rng = np.random.default_rng(0)
    ten = tuple(range(10))
    true = np.arange(20) % 10
    probs = np.roll(np.eye(10), 1, axis=1)[true] * 0.9 + 0.01  # every image wrong
    images = rng.random((20, 784))
    net = simple_net(30, n_out=10)
    return {
        "confusion": F.confusion_figure(np.eye(10, dtype=int) * 3, ten, source=source),
        "top-losses": F.top_losses_figure(images, probs, true, ten, k=10, source=source),
        "predictions": F.predictions_figure(probs, true, ten, source=source),
        "weights": F.weights_figure(rng.normal(size=(784, 10)), ten, source=source),
        "weights pair": F.weights_figure(rng.normal(size=784), (0, 9), source=source),
        "layers": F.layers_figure(net, ten, source=source),
        "layer2 pair": F.layer2_figure(rng.normal(size=(30, 1)), (0, 9), source=source),
        "activations": F.activations_figure(net, images[0], ten, source=source),
    }


def test_figures_name_fashion_mnist_classes_and_never_say_digit():
    for name, fig in _fashion_figures("fashion-mnist").items():
        text = " | ".join(_texts(fig))
        assert "digit" not in text, (name, text)
        wanted = ("0 T-shirt/top", "9 Ankle boot") if "pair" in name else FASHION
        for label in wanted:
            assert label in text, (name, label, text)


def test_confusion_ticks_are_the_class_names_in_label_order():
    fig = F.confusion_figure(np.eye(10, dtype=int), tuple(range(10)), source="fashion-mnist")
    ax = fig.get_axes()[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(FASHION)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(FASHION)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")


def test_top_losses_names_what_was_said_and_the_truth():
    probs = np.array([[0.1, 0.9], [0.8, 0.2]])
    fig = F.top_losses_figure(
        np.zeros((2, 784)), probs, np.array([0, 1]), (3, 6), source="fashion-mnist"
    )
    titles = [t.get_text() for t in fig.get_axes()[0].texts]
    assert titles == ["said 6 Shirt (0.90)\nis 3 Dress", "said 3 Dress (0.80)\nis 6 Shirt"]


def test_digits_keep_their_numbers_and_the_word_digit():
    fig = F.confusion_figure(np.eye(2, dtype=int), (2, 9))
    ax = fig.get_axes()[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "9"]
    assert ax.get_xlabel() == "predicted digit"
    weights = F.weights_figure(np.ones((784, 10)), tuple(range(10)))
    assert "digit 3" in _texts(weights)
