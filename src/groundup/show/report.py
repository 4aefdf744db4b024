"""One self-contained HTML page that walks through a run by the seven steps.

    groundup report RUN_DIR   ->   RUN_DIR/report.html

The page has seven sections, in the order the article takes them:

    1. the data                    what the model was shown, and one digit as numbers
    2. the initialisation          the weights before any learning (step 1)
    3. the first predictions       what those random weights say (step 2)
    4. the loss                    how wrong they are, and the slope that corrects it (3-5)
    5. the training curves         loss and accuracy, epoch by epoch (6)
    6. what the weights learned    the weight maps, layers and activations
    7. the mistakes                the confusion matrix and the most confident errors (7)

Every picture is a PNG inlined as a `data:image/png;base64,...` URI and the style
sheet is inline, so the file opens offline and loads nothing from anywhere.

What the page looks at (the run, its data, both models' outputs) is a `RunView`
from `show/view.py`; this module only writes it out as HTML.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from groundup.errors import UsageError
from groundup.show.view import RunView, confusion, init_gradients, view_run

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from groundup.runs.saved import Run

REPORT_FILE = "report.html"
DPI = 80  # small enough that a report of a dozen figures stays well under 2 MB

# (id, heading) of each section, in order; the tests check every heading is present.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("data", "1. The data"),
    ("init", "2. The initialisation"),
    ("predictions", "3. The first predictions"),
    ("loss", "4. The loss"),
    ("curves", "5. The training curves"),
    ("weights", "6. What the weights learned"),
    ("mistakes", "7. The mistakes"),
)


# -- HTML pieces ----------------------------------------------------------------------------


def png_data_uri(fig: Figure, dpi: int = DPI) -> str:
    """The figure as a `data:image/png;base64,...` URI, to inline in a page."""
    from groundup.show.figures import figure_bytes

    return "data:image/png;base64," + base64.b64encode(figure_bytes(fig, "png", dpi)).decode()


def _img(fig: Figure, alt: str) -> str:
    return (
        f'<figure><img src="{png_data_uri(fig)}" alt="{_e(alt)}">'
        f"<figcaption>{_e(alt)}</figcaption></figure>"
    )


def _e(text: Any) -> str:
    return html.escape(str(text))


def _table(rows: Sequence[Sequence[Any]], head: Sequence[str] = ()) -> str:
    out = ["<table>"]
    if head:
        out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return _e(f"{v:.4f}" if math.isfinite(v) else str(v))
    return _e(v)


def _section(key: str, body: str) -> str:
    heading = dict(SECTIONS)[key]
    return f'<section id="{key}"><h2>{_e(heading)}</h2>{body}</section>'


STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #dbe9f6; padding-bottom: 0.2em;
       margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
th { background: #f4f6f8; }
table.pixels td, table.pixels th { border: none; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #666; font-size: 0.85em; }
code { background: #f4f6f8; padding: 0 3px; }
.note { color: #555; }
nav a { margin-right: 1em; }
"""


# -- the sections ---------------------------------------------------------------------------


def _data_section(view: RunView) -> str:
    from groundup.show.figures import digits_figure, pixel_table_html

    digits = view.digits
    counts_t, counts_v = view.train.class_counts(), view.valid.class_counts()
    rows = [[d, counts_t.get(d, 0), counts_v.get(d, 0)] for d in digits]
    rows.append(["all", len(view.train), len(view.valid)])
    per_digit = 6 if len(digits) > 2 else 8
    picks, titles = view.first_images(per_digit)
    grid = digits_figure(view.train.x[picks], titles, max_cols=per_digit,
                         title=f"the first training images of each {view.word}")
    first = view.train.x[picks[0]]
    pair = ""
    if view.run.binary:
        pair = (f"<p>With two digits the model gives one score: a <b>{digits[0]}</b> is labelled "
                f"1 and a <b>{digits[1]}</b> is labelled 0.</p>")
    return _section("data", (
        f"<p>Source <code>{_e(view.raw.name)}</code> ({_e(view.raw.origin)}). Each image is "
        "28×28 pixels, flattened into a row of 784 numbers and divided by 255, so the model "
        "sees values between 0 (the black background) and 1 (white ink): every picture of "
        "the data here keeps MNIST's own white ink on black.</p>"
        + pair
        + _table(rows, [view.word, "train images", "valid images"])
        + _img(grid, "examples from the training set")
        + f"<p>The first image above, a {digits[0]}, as the numbers a computer stores "
        "(0 to 255, lighter where there is more ink):</p>"
        + pixel_table_html(first, title=f"the pixels of a {digits[0]}: 0 is the black "
                           "background, 255 full white ink")
    ))


def _init_section(view: RunView) -> str:
    from groundup.show.figures import weight_histogram_figure

    if getattr(view.run.model, "means", None) is not None:
        return _section("init", (
            "<p>Step 1, <b>initialise</b>, does not apply here: this model has no random "
            "start. It averages the training images of each digit, in one pass, and keeps "
            "those means; section 6 shows them.</p>"
        ))
    cfg = view.run.meta.get("config", {})
    scheme = cfg.get("init", view.run.spec.init)
    std = cfg.get("std", view.run.spec.std)
    origin = "saved with the run (init.safetensors)"
    init_state = view.init_model.state_dict()
    rows = view.init_stats()
    desc = {
        "normal": f"every weight drawn from a normal distribution with standard deviation {std:g}, "
        "the article's <code>init_params</code>",
        "kaiming": "normal, with standard deviation √(2 / inputs): a layer's outputs start "
        "at about the size of its inputs",
        "xavier": "normal, with standard deviation √(2 / (inputs + outputs))",
        "uniform": "uniform between ±1/√inputs, as PyTorch's nn.Linear does",
        "zeros": "all zero: a fine start for one layer, but hidden units would all stay alike",
    }.get(str(scheme), _e(scheme))
    hist = weight_histogram_figure(init_state, view.run.model.state_dict())
    return _section("init", (
        f"<p>Step 1, <b>initialise</b>: the weights start random. This run used "
        f"<code>{_e(scheme)}</code>: {desc}. The initial weights were {_e(origin)}.</p>"
        + _table(rows, ["parameter", "shape", "mean", "std"])
        + _img(hist, "the spread of each parameter before (grey) and after (blue) training")
    ))


def _predictions_section(view: RunView) -> str:
    from groundup.show.figures import predictions_figure

    fig = predictions_figure(view.init_probs, view.true, view.digits,
                             title="before training", source=view.source)
    extra = ""
    if view.run.binary:
        scores = view.init_outputs[:, 0].numpy()
        sat = float(np.mean(np.abs(scores) > 4.6))  # sigmoid beyond 0.99 or below 0.01
        size = float(np.abs(scores).mean())
        extra = (f"<p>The scores x·w + b have a typical size of {size:.2f}; "
                 f"{sat:.0%} of them are so large that the sigmoid is flat there (below 0.01 or "
                 "above 0.99), where a small change of weight barely changes the loss.</p>")
    acc = view.accuracy(initial=True)
    chance = float(np.bincount(view.true).max() / len(view.true))  # always naming the commonest
    if abs(acc - chance) < 0.1:
        verdict = f"about what guessing gives ({chance:.0%})"
    elif acc > chance:
        verdict = (f"better than guessing ({chance:.0%}) by the luck of the draw: random "
                   "weights already tell some shapes apart, but nothing has been learned")
    else:
        verdict = f"worse than always naming one digit ({chance:.0%})"
    return _section("predictions", (
        "<p>Step 2, <b>predict</b>: the untrained model already gives every image a score. "
        f"With its random weights it is right on {acc:.1%} of the "
        f"{len(view.true)} validation images: {_e(verdict)}.</p>"
        + extra
        + _img(fig, "what the initial weights say about the validation images")
    ))


def _loss_section(view: RunView) -> str:
    from groundup.show.figures import descent_figure, sigmoid_figure

    cfg = view.run.meta.get("config", {})
    lr = cfg.get("lr")
    if view.run.binary:
        formula = ("<p>Step 3, <b>loss</b>: accuracy cannot guide the weights, because it only "
                   "changes when a prediction flips. The article's <code>mnist_loss</code> "
                   "squashes each score with the sigmoid into a number between 0 and 1 and "
                   "measures its distance from the label: <code>1 − σ(score)</code> for a "
                   f"{view.digits[0]}, <code>σ(score)</code> for a {view.digits[1]}, averaged.</p>")
        figs = _img(sigmoid_figure(), "the sigmoid, σ(x) = 1 / (1 + e^-x)")
    else:
        formula = ("<p>Step 3, <b>loss</b>: with several digits the scores go through softmax, "
                   "which turns them into probabilities that add up to 1, and the loss is "
                   "cross-entropy: −log of the probability given to the right digit, averaged.</p>")
        figs = ""
    grads = init_gradients(view)
    grad_rows = [[name, g, (lr or 0) * g] for name, g in grads.items()]
    grad_html = ""
    if grad_rows:
        grad_html = (
            "<p>Step 4, <b>gradient</b>: autograd finds how the loss changes with each weight. "
            "Step 5, <b>step</b>: every weight moves against its gradient, "
            f"w ← w − lr · gradient, with lr = {lr}. At the start, over the training set:</p>"
            + _table(grad_rows, ["parameter", "gradient norm", "first step (lr × norm)"])
        )
    losses = _table(
        [["before training", view.loss(initial=True), view.accuracy(initial=True)],
         ["after training", view.loss(), view.accuracy()]],
        ["validation", "loss", "accuracy"],
    )
    return _section("loss", (
        formula + figs + losses + grad_html
        + "<p>Gradient descent on y = x², the simplest loss there is: each step follows the "
        "slope downhill, and the steps shrink as the slope flattens near the bottom.</p>"
        + _img(descent_figure(), "gradient descent on y = x²")
    ))


def _curves_section(view: RunView) -> str:
    from groundup.show.figures import curves_figure

    history = view.run.meta.get("history", [])
    if not history:
        return _section("curves", "<p class='note'>This run has no recorded epochs.</p>")
    cols = [c for c in history[0] if c != "seconds"]
    stop = view.run.meta.get("config", {}).get("epochs")
    said = (f"training stopped after {len(history)} epochs" +
            (f" of the {stop} allowed." if stop and stop != len(history) else "."))
    return _section("curves", (
        "<p>Step 6, <b>repeat</b>: one epoch is one pass over the training images in "
        "mini-batches, a step after each. Step 7, <b>stop</b>: " + _e(said) + "</p>"
        + _img(curves_figure(history), "loss and accuracy per epoch")
        + "<details><summary>every epoch</summary>"
        + _table([[row.get(c) for c in cols] for row in history], cols)
        + "</details>"
    ))


def _weights_section(view: RunView) -> str:
    from groundup.learn.models import Linear, Sequential
    from groundup.show.figures import (
        activations_figure,
        digits_figure,
        linear_weights,
        neurons_figure,
        weights_figure,
    )

    model, digits = view.run.model, view.digits
    if isinstance(model, Linear):
        w, b = linear_weights(model)
        w0, _ = linear_weights(view.init_model)
        if len(digits) == 2:
            text = (f"<p>The linear model multiplies each pixel by its weight and adds them up. "
                    f"Blue pixels push the score up, toward <b>{digits[0]}</b>; red ones push "
                    f"it down, toward <b>{digits[1]}</b>. Ink where a {digits[0]} has its "
                    f"strokes and a {digits[1]} does not counts for {digits[0]}.</p>")
        else:
            text = ("<p>One weight map per digit: the digit's score is the sum of the pixels "
                    "times its map, and the highest score wins. Blue is ink that counts for "
                    "the digit, red ink that counts against it.</p>")
        return _section("weights", (
            text + _img(weights_figure(w, digits, b, source=view.source), "the learned weights")
            + "<p>What training added to the initial weights (learned minus initial):</p>"
            + _img(weights_figure(w - w0, digits, source=view.source),
                   "the change from the initial weights")
        ))
    if isinstance(model, Sequential):
        from groundup.show.figures import hidden_layers

        try:
            first, second = hidden_layers(model)
        except UsageError:  # another layout of layers: the note below says so
            first = None
        if first is not None:
            w1, _ = linear_weights(first)
            w2, _ = linear_weights(second)
            w1_0, _ = linear_weights(hidden_layers(view.init_model)[0])
            k = 0  # the first validation image
            return _section("weights", (
                "<p>The first layer has one 28×28 weight map per neuron: each neuron adds up "
                "the pixels times its map, and the ReLU keeps only positive sums. The second "
                "layer weighs the neurons' outputs into the final score. Each title gives the "
                "neuron's weight in the output: positive neurons vote for "
                f"<b>{digits[0]}</b>.</p>"
                + _img(neurons_figure(w1, w2), "the first layer's neurons")
                + "<p>With few images and few epochs, much of each map is still the random "
                "start. What training changed (learned minus initial) shows the part it "
                "learned:</p>"
                + _img(neurons_figure(w1 - w1_0, w2, title="first layer: learned minus initial"),
                       "the change in the first layer")
                + "<p>One validation image passing through the net, layer by layer:</p>"
                + _img(activations_figure(model, view.valid.x[k], digits, source=view.source),
                       f"validation image {k} through the net")
            ))
    means = getattr(model, "means", None)
    if means is not None:
        return _section("weights", (
            "<p>This model learned no weights by gradient: it keeps the mean image of each "
            "digit and answers with the nearest one.</p>"
            + _img(digits_figure(means, [view.name(d) for d in digits], max_cols=10),
                   f"the mean image of each {view.word}")
        ))
    return _section("weights", (
        f"<p class='note'>The weights of the {_e(view.run.spec.name)} model are not drawn "
        "here; the figures cover the linear model and simple_net.</p>"
    ))


def _mistakes_section(view: RunView) -> str:
    from groundup.show.figures import confusion_figure, top_losses_figure

    cm = confusion(view)
    wrong = int(cm.sum() - np.trace(cm))
    return _section("mistakes", (
        f"<p>On the {int(cm.sum())} validation images, which the model never trained on, it "
        f"is right {view.accuracy():.1%} of the time and wrong {wrong} "
        f"time{'s' * (wrong != 1)}. Rows are the "
        "true digit, columns what the model said.</p>"
        + _img(confusion_figure(cm, view.digits, source=view.source), "the confusion matrix")
        + "<p>The mistakes it was most sure of, the images with the highest loss:</p>"
        + _img(top_losses_figure(view.valid.x, view.probs, view.true, view.digits,
                                 source=view.source),
               "the most confident mistakes")
    ))


def build_report(run: RunView | Run | str | Path, source: str | None = None) -> str:
    """The report of a run (a RunView, a Run or a run directory) as one HTML string."""
    from groundup.show.figures import steps_figure

    view = run if isinstance(run, RunView) else view_run(run, source)
    name = view.run.path.name or str(view.run.path)
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in SECTIONS)
    sections = [
        _data_section(view),
        _init_section(view),
        _predictions_section(view),
        _loss_section(view),
        _curves_section(view),
        _weights_section(view),
        _mistakes_section(view),
    ]
    return "".join([
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>groundup report: {_e(name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>How this network learned: {_e(name)}</h1>",
        f"<p class='note'>A report of the run in <code>{_e(view.run.path)}</code>, by the seven "
        "steps of learning.</p>",
        f"<nav>{nav}</nav>",
        _img(steps_figure(), "the seven steps"),
        _table(view.summary(), ["setting", "value"]),
        *sections,
        "</body></html>\n",
    ])


def write_report(
    run_dir: str | Path, out: str | Path | None = None, source: str | None = None
) -> Path:
    """Write the report of the run in `run_dir` to `out` (default RUN_DIR/report.html)."""
    from groundup.atomic import atomic_write_bytes

    out = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    atomic_write_bytes(out, build_report(run_dir, source).encode("utf-8"))
    return out
