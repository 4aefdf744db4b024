"""The article's pictures, drawn for any run: each figure is a function returning a Figure.

    digit_figure          one image, as the model's 28x28 input
    digits_figure         a grid of images with captions
    pixel_table_html      the image as its 28x28 numbers, each cell shaded by value (HTML)
    pixel_table_figure    the same table as a picture (PNG or SVG)
    steps_figure          the seven steps as a flow diagram, with the repeat loop
    descent_figure        gradient descent on y = x^2, with the tangent at each step
    sigmoid_figure        sigma(x) = 1 / (1 + e^-x)
    curves_figure         a run's loss and accuracy, epoch by epoch
    predictions_figure    what a model says about the validation images
    weights_figure        a linear model's 784 weights as a 28x28 map per output
    weight_histogram_figure  how the weights are spread, before and after training
    neurons_figure        the weight images of the first layer's neurons
    layer2_figure         the second layer's weights, one bar per hidden neuron
    layers_figure         both of the above side by side (simple_net)
    activations_figure    one image passing through the net, layer by layer
    confusion_figure      counts of (true label, predicted label)
    top_losses_figure     the most confident mistakes, with their images

They are drawn with matplotlib on the Agg backend: a `Figure` made directly, with no
pyplot and so no global state, which is safe in a web server's threads. matplotlib
is imported inside the functions, so that importing this module costs nothing.
`save_figure(fig, "x.png")` writes PNG or SVG, chosen by the suffix.

Inputs are tensors or numpy arrays; the figures never change the model.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from groundup.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

# The seven steps of the article, and the function of groundup that takes each one.
STEPS: tuple[tuple[str, str], ...] = (
    ("init", "init_params"),
    ("predict", "linear1"),
    ("loss", "mnist_loss"),
    ("gradient", "calc_grad"),
    ("step", "opt.step()"),
    ("repeat", "train_epoch"),
    ("stop", "after N epochs"),
)
FORMATS = ("png", "svg")
DIVERGING = "RdBu"  # weights: blue is positive, red negative, white zero
# Pictures of the data keep MNIST's own convention everywhere, as `data show --png`
# does: white ink on a black background (0 black, 255 or 1.0 white), and say so.
INK = "gray"
INK_NOTE = "as MNIST stores it: white ink (255) on black (0)"
SIDE = 28  # an MNIST image is 28x28 pixels


# -- helpers --------------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Figure:
    """A Figure with its own Agg canvas, laid out so labels do not overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_numpy(x: Any) -> np.ndarray:
    """A tensor (on any device, with or without grad) or array as a float64 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").numpy()
    return np.asarray(x, dtype=np.float64)


def as_image(x: Any) -> np.ndarray:
    """One image as a (28, 28) array, from (784,), (1, 784) or (28, 28)."""
    a = to_numpy(x)
    if a.size != SIDE * SIDE:
        raise UsageError(f"an image needs {SIDE * SIDE} pixels, this one has {a.size}")
    return a.reshape(SIDE, SIDE)


def _hide_axes(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _names(digits: Sequence[int], source: str) -> list[str]:
    """How each label of `digits` is shown: "3", or "3 Dress" for Fashion-MNIST.

    The names and the word for a label ("digit" or "class") have one home,
    `groundup.data.sources`; `source` is the run's data source ("" for digits).
    """
    from groundup.data.sources import class_name

    return [class_name(source, int(d)) for d in digits]


def _word(source: str) -> str:
    from groundup.data.sources import class_word

    return class_word(source)


def _grid_shape(n: int, max_cols: int) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = 100) -> bytes:
    """The figure encoded as PNG or SVG bytes."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"figures are written as {' or '.join(FORMATS)}, not {fmt!r}")
    buf = io.BytesIO()
    # metadata without a date, so the same figure gives the same bytes
    meta = {"Software": None} if fmt == "png" else {"Date": None}
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write `fig` to `path` as PNG or SVG, by its suffix, through a temporary file."""
    from groundup.atomic import atomic_write_bytes

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"{path}: a figure file must end in .png or .svg")
    atomic_write_bytes(path, figure_bytes(fig, fmt, dpi))
    return path


# -- the data -------------------------------------------------------------------------------


def digit_figure(image: Any, title: str = "", size: float = 3.0) -> Figure:
    """One image as the model sees it: (784,) or (28, 28), values in [0, 1] or 0-255."""
    fig = _new_figure(size, size)
    ax = fig.add_subplot()
    ax.imshow(as_image(image), cmap=INK, vmin=0, vmax=_ink_max(image), interpolation="nearest")
    _hide_axes(ax)
    if title:
        ax.set_title(title)
    _ink_caption(fig)
    return fig


def _ink_max(image: Any) -> float:
    """The full-ink value: 1.0 on the model's [0, 1] scale, 255 for stored bytes."""
    return 1.0 if float(np.max(to_numpy(image))) <= 1.0 else 255.0


def _tilt_if_long(ax: Axes, labels: Sequence[str]) -> None:
    """Turn the x tick labels when they are class names, so that they do not overlap."""
    if max((len(s) for s in labels), default=0) > 2:
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")


def _ink_caption(fig: Figure) -> None:
    fig.text(0.5, 0.005, INK_NOTE, ha="center", va="bottom", fontsize=7, color="#555")


GAP = 9  # pixels between the images of a grid, room for a caption above each


def _image_grid(
    ax: Axes,
    images: np.ndarray,
    titles: Sequence[str],
    max_cols: int,
    cmap: str,
    symmetric: bool = False,
    fontsize: float = 7,
) -> None:
    """Draw (N, 28, 28) images as a grid inside one Axes, one AxesImage each.

    One Axes for the whole grid, not one per image: a grid of 30 subplots takes
    seconds to lay out, this takes a fraction of one. With `symmetric`, each image
    gets its own scale centred on zero (for weights: white is zero).
    """
    from matplotlib.patches import Rectangle

    rows, cols = _grid_shape(len(images), max_cols)
    gap = GAP * _caption_lines(titles)
    step = SIDE + gap
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        x0, y0 = c * (SIDE + GAP), r * step + gap
        if symmetric:
            s = float(np.abs(img).max()) or 1.0
            lim = {"vmin": -s, "vmax": s}
        else:
            lim = {"vmin": min(0.0, float(img.min())), "vmax": max(1.0, float(img.max()))}
        ax.imshow(
            img, cmap=cmap, interpolation="nearest", extent=(x0, x0 + SIDE, y0 + SIDE, y0), **lim
        )
        ax.add_patch(Rectangle((x0, y0), SIDE, SIDE, fill=False, lw=0.6, edgecolor="#444"))
        if i < len(titles):
            ax.text(x0 + SIDE / 2, y0 - 1.5, titles[i], ha="center", va="bottom", fontsize=fontsize)
    ax.set_xlim(-1, cols * (SIDE + GAP) - GAP + 1)
    ax.set_ylim(rows * step + 1, 0)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _caption_lines(titles: Sequence[str]) -> int:
    return 1 + max((t.count("\n") for t in titles), default=0)


def digits_figure(
    images: Any, titles: Sequence[str] = (), max_cols: int = 8, title: str = ""
) -> Figure:
    """A grid of images (N, 784) or (N, 28, 28), each with its caption from `titles`.

    Image i is the i-th AxesImage of the figure's one Axes.
    """
    imgs = to_numpy(images).reshape(-1, SIDE, SIDE)
    if len(imgs) == 0:
        raise UsageError("there are no images to draw")
    rows, cols = _grid_shape(len(imgs), max_cols)
    width = 1.3 * cols + 0.2
    # + 0.2 in: room for the note on the ink
    extra = 0.25 * (_caption_lines(titles) - 1)  # each caption line after the first
    fig = _new_figure(
        max(width, 3.5) if title else width, (1.45 + extra) * rows + (0.4 if title else 0) + 0.2
    )
    _image_grid(fig.add_subplot(), imgs, titles, max_cols, INK, fontsize=8)
    if title:
        fig.suptitle(title)
    _ink_caption(fig)
    return fig


def _pixel_values(image: Any) -> np.ndarray:
    """The image as whole numbers 0-255, as the article's pixel table shows them."""
    dtype = getattr(image, "dtype", None)
    if dtype is None:
        stored_as_bytes = False
    elif hasattr(dtype, "is_floating_point"):  # a torch dtype
        stored_as_bytes = not dtype.is_floating_point
    else:
        stored_as_bytes = np.issubdtype(dtype, np.integer)
    a = as_image(image)
    # the model's [0, 1] scale goes back to the stored bytes; an image given as bytes is
    # the bytes already, even a faint one whose pixels are all 0 or 1
    if not stored_as_bytes and a.max() <= 1.0:
        a = a * 255.0
    return np.rint(a).astype(np.int64)


def pixel_table_html(
    image: Any,
    rows: tuple[int, int] = (0, SIDE),
    cols: tuple[int, int] = (0, SIDE),
    title: str = "",
) -> str:
    """The image as an HTML table of its pixel values 0-255, each cell shaded by value.

    Each cell is shaded as MNIST stores the pixel, as every picture of the data is
    (INK): 0 black, 255 white. (The article's pandas table shades the other way.)
    `rows` and `cols` choose a window, as the article's `im3_t[4:15, 4:22]` does.
    `title` becomes the table's caption. Inline styles only, so the table can be
    pasted into any page.
    """
    values = _pixel_values(image)[rows[0] : rows[1], cols[0] : cols[1]]
    cell = "min-width:2.6em;height:1.4em;text-align:center;padding:0 1px;font:10px monospace"
    out = ['<table class="pixels" style="border-collapse:collapse">']
    if title:
        out.append(
            '<caption style="font:bold 13px sans-serif;text-align:left;padding:4px 0">'
            f"{html.escape(title)}</caption>"
        )
    out.append("<tr><th></th>")
    out += [f'<th style="{cell};color:#888">{c}</th>' for c in range(cols[0], cols[1])]
    out.append("</tr>")
    for r, row in zip(range(rows[0], rows[0] + len(values)), values, strict=True):
        out.append(f'<tr><th style="{cell};color:#888">{r}</th>')
        for v in row:
            shade = int(v)  # more ink, lighter cell, as MNIST stores it
            text = "#000" if v > 127 else "#fff"
            bg = f"rgb({shade},{shade},{shade})"
            out.append(f'<td style="{cell};background:{bg};color:{text}">{v}</td>')
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def pixel_table_figure(
    image: Any, rows: tuple[int, int] = (0, SIDE), cols: tuple[int, int] = (0, SIDE)
) -> Figure:
    """The pixel table as a picture: each cell shaded by its value, the value written in it."""
    values = _pixel_values(image)[rows[0] : rows[1], cols[0] : cols[1]]
    h, w = values.shape
    fig = _new_figure(0.36 * w + 0.6, 0.3 * h + 0.5)
    ax = fig.add_subplot()
    ax.imshow(values, cmap=INK, vmin=0, vmax=255, interpolation="nearest", aspect="auto")
    for (r, c), v in np.ndenumerate(values):
        ax.text(
            c,
            r,
            str(v),
            ha="center",
            va="center",
            fontsize=6,
            color="black" if v > 127 else "white",
        )
    ax.set_xticks(range(w), [str(c) for c in range(cols[0], cols[1])], fontsize=6)
    ax.set_yticks(range(h), [str(r) for r in range(rows[0], rows[1])], fontsize=6)
    ax.tick_params(length=0)
    return fig


# -- the idea -------------------------------------------------------------------------------


def steps_figure() -> Figure:
    """The seven steps as boxes in a row, with the loop from *repeat* back to *predict*.

    Under each box: the groundup function that takes that step.
    """
    from matplotlib.patches import FancyBboxPatch

    fig = _new_figure(11, 2.1)
    ax = fig.add_subplot()
    ax.set_xlim(-0.6, len(STEPS) - 0.4)
    ax.set_ylim(-1.45, 0.5)
    ax.set_axis_off()
    box_w, box_h = 0.84, 0.62
    for i, (name, func) in enumerate(STEPS):
        colour = "#dbe9f6" if name not in ("init", "stop") else "#eeeeee"
        ax.add_patch(
            FancyBboxPatch(
                (i - box_w / 2, -box_h / 2),
                box_w,
                box_h,
                boxstyle="round,pad=0.04",
                facecolor=colour,
                edgecolor="#335",
            )
        )
        ax.text(i, 0.1, name, ha="center", va="center", fontsize=12, weight="bold", gid="step")
        ax.text(
            i, -0.15, func, ha="center", va="center", fontsize=7.5, family="monospace", color="#444"
        )
    arrow = {"arrowstyle": "-|>", "color": "#335", "lw": 1.5}
    for i in range(len(STEPS) - 1):
        ax.annotate("", xy=(i + 1 - box_w / 2, 0), xytext=(i + box_w / 2, 0), arrowprops=arrow)
    # the loop: from the bottom of "repeat" round to the bottom of "predict"
    rep, pred = _step_index("repeat"), _step_index("predict")
    ax.annotate(
        "",
        xy=(pred, -box_h / 2 - 0.05),
        xytext=(rep, -box_h / 2 - 0.05),
        gid="loop",
        arrowprops={**arrow, "connectionstyle": "bar,fraction=-0.12"},
    )
    ax.text(
        (rep + pred) / 2,
        -1.3,
        "repeat: predict again with the new weights",
        ha="center",
        fontsize=9,
        style="italic",
    )
    return fig


def _step_index(name: str) -> int:
    return [s for s, _ in STEPS].index(name)


def descent_path(x0: float = 1.5, lr: float = 0.2, steps: int = 6) -> np.ndarray:
    """The points of gradient descent on y = x^2: x_{k+1} = x_k - lr * 2 x_k.

    The slope 2x flattens as x nears 0, so each step is smaller than the last
    (for 0 < lr < 0.5: x shrinks by the factor 1 - 2 lr). Returns (steps + 1,).
    """
    if not lr > 0:
        raise UsageError(f"the learning rate must be above 0, not {lr}")
    if not 1 <= steps <= 200:
        raise UsageError(f"steps must be between 1 and 200, not {steps}")
    xs = [float(x0)]
    for _ in range(steps):
        x = xs[-1]
        xs.append(x - lr * 2 * x)
    return np.array(xs)


def descent_figure(x0: float = 1.5, lr: float = 0.2, steps: int = 6) -> Figure:
    """Gradient descent on y = x^2: each point, the tangent there, and the step it takes.

    The line labelled "steps" holds the points (x_k, x_k^2) of `descent_path`.
    """
    xs = descent_path(x0, lr, steps)
    reach = max(abs(xs).max(), 1.0) * 1.15
    fig = _new_figure(7, 4.5)
    ax = fig.add_subplot()
    grid = np.linspace(-reach, reach, 200)
    ax.plot(grid, grid**2, color="#888", label="y = x²")
    half = reach / 5  # each tangent is drawn this far either side of its point
    last = len(xs) - 2  # the step being taken now: its tangent is drawn in full
    for k, x in enumerate(xs[:-1]):
        slope = 2 * x
        seg = np.array([x - half, x + half])
        # earlier tangents fade, so that they do not hide the steps
        ax.plot(
            seg,
            x**2 + slope * (seg - x),
            color="tab:orange",
            lw=1.8 if k == last else 1.0,
            alpha=1.0 if k == last else 0.15,
            label="tangent at the current step (slope 2x); earlier ones faded"
            if k == last
            else None,
        )
        if k in (0, last):  # the first slope and the current one; the rest would pile up
            ax.annotate(
                f"slope {slope:.2f}",
                (x, x**2),
                xytext=(8, -14),
                textcoords="offset points",
                fontsize=8,
                color="tab:orange",
            )
        ax.annotate(
            "",
            xy=(xs[k + 1], xs[k + 1] ** 2),
            xytext=(x, x**2),
            arrowprops={"arrowstyle": "->", "color": "tab:blue", "lw": 1},
        )
    ax.plot(xs, xs**2, "o", color="tab:blue", label="steps")
    ax.set_xlabel("x (the weight)")
    ax.set_ylabel("y = x² (the loss)")
    ax.set_title(f"gradient descent: x ← x − {lr:g} · 2x, from x = {x0:g}")
    ax.legend(loc="upper center")
    return fig


def sigmoid_figure(lo: float = -6.0, hi: float = 6.0) -> Figure:
    """sigma(x) = 1 / (1 + e^-x): any score becomes a number between 0 and 1.

    The line labelled "sigmoid" holds the plotted (x, sigma(x)).
    """
    x = np.linspace(lo, hi, 241)
    # the two-sided form never takes e^ of a large positive number
    e = np.exp(-np.abs(x))  # in (0, 1]
    y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    fig = _new_figure(6, 3.5)
    ax = fig.add_subplot()
    ax.plot(x, y, color="tab:blue", lw=2, label="sigmoid")
    ax.axhline(0.5, color="#aaa", lw=0.8, ls="--")
    ax.axvline(0, color="#aaa", lw=0.8, ls="--")
    ax.set_xlabel("score x = x·w + b")
    ax.set_ylabel("σ(x)")
    ax.set_title("sigmoid: σ(x) = 1 / (1 + e⁻ˣ)")
    ax.set_ylim(-0.02, 1.02)
    return fig


# -- a run ----------------------------------------------------------------------------------


def curves_figure(history: Sequence[Mapping[str, Any]], title: str = "") -> Figure:
    """Loss (train and valid) and accuracy per epoch, from `run.meta["history"]` or
    `learn.history`. A `train_accuracy` column is drawn too when the history has one."""
    if not history:
        raise UsageError("this run has no history: it was never trained for an epoch")
    epochs = [row["epoch"] for row in history]
    fig = _new_figure(9, 3.6)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for key, label in (("train_loss", "train"), ("valid_loss", "valid")):
        if key in history[0]:
            ax_loss.plot(epochs, [row[key] for row in history], marker=".", label=label)
    ax_loss.set_title("loss")
    for key, label in (("train_accuracy", "train"), ("accuracy", "valid")):
        if key in history[0]:
            ax_acc.plot(epochs, [row[key] for row in history], marker=".", label=label)
    ax_acc.set_title("accuracy")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def accuracy_compute_figure(points: Sequence[Mapping[str, Any]], title: str = "") -> Figure:
    """Validation accuracy against training FLOPs, one labelled point per model.

    `points` as `groundup.runs.experiments.accuracy_vs_compute` gives them. The FLOPs axis
    is logarithmic: the models differ by factors of ten to a million, and moving right
    one gridline means ten times the work for whatever accuracy it buys."""
    if not points:
        raise UsageError("no runs to draw")
    fig = _new_figure(6.4, 4.2)
    ax = fig.subplots()
    flops = [max(float(p["training_flops"]), 1.0) for p in points]
    acc = [100 * float(p["accuracy"]) for p in points]
    ax.plot(flops, acc, color="0.7", zorder=1)
    ax.scatter(flops, acc, zorder=2)
    for p, x, y in zip(points, flops, acc, strict=True):
        label = f"{p['model']} {y:.1f}%"
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, -12))
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs (3 × forward × images × epochs)")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3, which="both")
    data = sorted({str(p["data"]) for p in points})
    ax.set_title(title or f"what accuracy costs ({', '.join(data)})")
    return fig


def predictions_figure(
    probs: Any,
    true_class: Any,
    digits: Sequence[int],
    title: str = "predictions",
    *,
    source: str = "",
) -> Figure:
    """What a model says about the validation images.

    Left: how much probability it gives the right digit, one histogram per true digit
    (a good model piles everything near 1). Right: how often it predicts each digit.
    probs: (N, C); true_class: (N,) positions in `digits`. `source` names the labels
    (Fashion-MNIST's are classes of clothes, not digits).
    """
    p = to_numpy(probs)
    t = to_numpy(true_class).astype(np.int64)
    right = p[np.arange(len(t)), t]  # (N,)
    fig = _new_figure(9, 3.4)
    ax_hist, ax_bar = fig.subplots(1, 2)
    bins = np.linspace(0, 1, 21)
    names, word = _names(digits, source), _word(source)
    for c, name in enumerate(names):
        ax_hist.hist(right[t == c], bins=bins, histtype="step", lw=1.5, label=f"true {name}")
    ax_hist.set_xlabel(f"probability given to the right {word}")
    ax_hist.set_ylabel("images")
    if len(digits) <= 10:
        ax_hist.legend(fontsize=7)
    counts = np.bincount(p.argmax(axis=1), minlength=len(digits))
    ax_bar.bar(names, counts, color="tab:blue")
    _tilt_if_long(ax_bar, names)
    ax_bar.set_xlabel(f"predicted {word}")
    ax_bar.set_ylabel("images")
    fig.suptitle(f"{title}: {float((p.argmax(axis=1) == t).mean()):.1%} right")
    return fig


def weights_figure(
    weights: Any, digits: Sequence[int], bias: Any = None, *, source: str = ""
) -> Figure:
    """A linear model's weights, one 28x28 map per output, on a diverging scale.

    weights: (784, C) as `Linear.weight` (or (784,)). For a pair (C = 1) the one map
    shows which pixels vote for the first digit (blue, positive: ink there raises the
    score) and which for the second (red, negative). For C classes there is a map per
    digit, blue where ink is evidence for it. All maps share one symmetric scale, so
    white is exactly zero. The image of map c is `weights[:, c].reshape(28, 28)`.
    """
    w = to_numpy(weights)
    if w.ndim == 1:
        w = w[:, None]
    if w.shape[0] != SIDE * SIDE:
        raise UsageError(f"weights for a 28x28 image have 784 rows, these have {w.shape[0]}")
    b = None if bias is None else to_numpy(bias).reshape(-1)
    n_out = w.shape[1]
    scale = float(np.abs(w).max()) or 1.0
    if n_out == 1:
        fig = _new_figure(5, 4.4)
        ax = fig.add_subplot()
        im = ax.imshow(
            w[:, 0].reshape(SIDE, SIDE),
            cmap=DIVERGING,
            vmin=-scale,
            vmax=scale,
            interpolation="nearest",
        )
        _hide_axes(ax)
        first, second = _names(digits, source) if len(digits) == 2 else ("1", "0")
        where = f", bias {b[0]:+.3f}" if b is not None else ""
        ax.set_title(f'blue pixels vote "{first}", red vote "{second}"{where}', fontsize=10)
        bar = fig.colorbar(im, ax=ax, shrink=0.85)
        bar.set_label(f'← "{second}"      weight      "{first}" →')
        return fig
    rows, cols = _grid_shape(n_out, 5)
    names, word = _names(digits, source), _word(source)
    fig = _new_figure(2.1 * cols + 0.8, 2.2 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    im = None
    for c, ax in enumerate(axes.flat):
        _hide_axes(ax)
        if c >= n_out:
            ax.set_axis_off()
            continue
        im = ax.imshow(
            w[:, c].reshape(SIDE, SIDE),
            cmap=DIVERGING,
            vmin=-scale,
            vmax=scale,
            interpolation="nearest",
        )
        label = names[c] if c < len(names) else c
        ax.set_title(f"{word} {label}" + (f" (b {b[c]:+.2f})" if b is not None else ""), fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.8, label=f"weight: blue is evidence for the {word}")
    return fig


def _draw_neurons(
    fig: Figure | SubFigure,
    w1: np.ndarray,
    w2: np.ndarray | None,
    max_neurons: int,
    title: str = "",
    moved: np.ndarray | None = None,
) -> None:
    """The first `max_neurons` neurons of w1 (784, H), or with `moved` (H,), each
    neuron's distance from its initial weights, the ones that moved most, in order."""
    total = w1.shape[1]
    n = min(total, max_neurons)
    order = np.arange(n) if moved is None else np.argsort(-moved, kind="stable")[:n]
    maps = w1[:, order].T.reshape(n, SIDE, SIDE)  # neuron j's weights as an image
    if moved is not None:
        captions = [f"{j}: moved {moved[j]:.2f}" for j in order]
    elif w2 is None or w2.shape[1] != 1:
        captions = [f"{j}" for j in order]
    else:
        captions = [f"{j}: {w2[j, 0]:+.2f}" for j in order]
    # each neuron on its own scale, so that its pattern shows whatever its size
    ax = fig.add_subplot()
    _image_grid(ax, maps, captions, 6, DIVERGING, symmetric=True, fontsize=6)
    if not title:
        if moved is not None:
            which = "all" if n == total else f"the {n} of {total}"
            title = (
                f"first layer: {which} neurons, those that moved most from their start "
                "first (caption: neuron, distance moved)"
            )
        else:
            which = f"all {n}" if n == total else f"neurons 0-{n - 1} of {total}"
            title = f"first layer: what each neuron looks for ({which})"
            if w2 is not None and w2.shape[1] == 1:
                title += "; caption: its weight in the output"
    fig.suptitle(title, fontsize=9)
    _neuron_colour_bar(fig, ax)


def _neuron_colour_bar(fig: Figure | SubFigure, ax: Axes) -> None:
    """The scale of the neuron maps: each is drawn on its own, ±(its largest |weight|)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(
        ScalarMappable(Normalize(-1, 1), DIVERGING),
        ax=ax,
        shrink=0.6,
        orientation="horizontal",
        pad=0.02,
        aspect=40,
    )
    bar.set_ticks([-1, 0, 1], labels=["−max", "0", "+max"])
    bar.set_label(
        "weight ÷ the neuron's largest |weight|: blue, ink there excites the "
        "neuron; red, it inhibits",
        fontsize=7,
    )
    bar.ax.tick_params(labelsize=7)


def neurons_figure(w1: Any, w2: Any = None, max_neurons: int = 30, title: str = "") -> Figure:
    """The first layer's neurons as images: column j of w1 (784, H) is a 28x28 map of
    what neuron j responds to (blue: ink there excites it; red: inhibits it).

    With w2 (H, 1), each title also gives that neuron's weight in the output.
    """
    a = to_numpy(w1)
    b = None if w2 is None else to_numpy(w2).reshape(a.shape[1], -1)
    rows, cols = _grid_shape(min(a.shape[1], max_neurons), 6)
    fig = _new_figure(1.25 * cols, 1.35 * rows + 0.4)
    _draw_neurons(fig, a, b, max_neurons, title)
    return fig


def _draw_layer2(ax: Axes, w2: np.ndarray, digits: Sequence[int], source: str = "") -> None:
    if w2.shape[1] == 1:
        v = w2[:, 0]
        colours = ["tab:blue" if x > 0 else "tab:red" for x in v]
        ax.barh(np.arange(len(v)), v, color=colours)
        ax.invert_yaxis()
        ax.axvline(0, color="#555", lw=0.8)
        ax.set_ylabel("hidden neuron")
        first, second = _names(digits, source) if len(digits) == 2 else ("1", "0")
        ax.set_xlabel(f'← "{second}"   weight   "{first}" →')
        ax.set_title("second layer")
    else:
        s = float(np.abs(w2).max()) or 1.0
        im = ax.imshow(w2, cmap=DIVERGING, vmin=-s, vmax=s, aspect="auto", interpolation="nearest")
        ax.set_ylabel(f"hidden neuron (all {len(w2)})")
        if len(digits) == w2.shape[1]:  # the output layer: one column per class
            names = _names(digits, source)
            ax.set_xticks(range(len(digits)), names)
            _tilt_if_long(ax, names)
            ax.set_xlabel(f"output: one per {_word(source)}")
        else:
            ax.set_xlabel(f"unit of the next layer ({w2.shape[1]})")
        ax.set_title("second layer weights")
        ax.figure.colorbar(im, ax=ax, label="weight: blue excites the unit it feeds, red inhibits")


def layer2_figure(w2: Any, digits: Sequence[int] = (2, 9), *, source: str = "") -> Figure:
    """The second layer's weights: one bar per hidden neuron (for one output), positive
    for a neuron whose firing pushes toward the first label. w2: (H, 1) or (H, C)."""
    w = to_numpy(w2)
    w = w[:, None] if w.ndim == 1 else w
    fig = _new_figure(4, max(3.0, 0.16 * len(w) + 1))
    _draw_layer2(fig.add_subplot(), w, digits, source)
    return fig


def linear_weights(layer: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(weight (n_in, n_out), bias (n_out,)) of our `Linear` or a `torch.nn.Linear`."""
    import torch

    w = layer.weight
    if isinstance(layer, torch.nn.Linear):
        w = w.T  # torch stores (out, in)
    bias = getattr(layer, "bias", None)
    return to_numpy(w), None if bias is None else to_numpy(bias)


def hidden_layers(model: Any) -> tuple[Any, Any]:
    """The two Linear layers of a simple_net-like model: Linear, ReLU, Linear, ..."""
    from groundup.learn.models import Linear, Sequential

    layers = list(getattr(model, "layers", [])) if isinstance(model, Sequential) else []
    linears = [layer for layer in layers if isinstance(layer, Linear)]
    if len(linears) < 2:
        raise UsageError(
            "the layers figure is for a net such as simple_net (Linear, ReLU, Linear); "
            "for the linear model use the weights figure"
        )
    return linears[0], linears[1]


def layers_figure(
    model: Any,
    digits: Sequence[int] = (2, 9),
    max_neurons: int = 30,
    init: Any = None,
    *,
    source: str = "",
) -> Figure:
    """simple_net's two layers: the first layer's neurons as images, and the second
    layer's weight on each of them.

    With `init`, the model before training, each neuron's caption gives how far its
    weights moved from their start, ||w1[:, j] - w1_init[:, j]||, and the neurons are
    ordered by it: on little data many neurons still show mostly their random start,
    and this shows which ones learned.
    """
    first, second = hidden_layers(model)
    w1, _ = linear_weights(first)
    w2, _ = linear_weights(second)
    moved = None
    if init is not None:
        w1_0, _ = linear_weights(hidden_layers(init)[0])
        moved = np.linalg.norm(w1 - w1_0, axis=0)  # (H,)
    rows, cols = _grid_shape(min(w1.shape[1], max_neurons), 6)
    fig = _new_figure(1.25 * cols + 3.6, max(1.45 * rows + 1.0, 4))
    left, right = fig.subfigures(1, 2, width_ratios=[1.25 * cols, 3.4])
    _draw_neurons(left, w1, w2, max_neurons, moved=moved)
    _draw_layer2(right.add_subplot(), w2, digits, source)
    return fig


def activations(model: Any, x: Any) -> list[tuple[str, np.ndarray]]:
    """Run one image (784,) through a Sequential and keep what each layer gives out.

    Returns [(layer name, its output (width,)), ...], starting with ("input", x).
    """
    import torch

    from groundup.learn.models import Sequential

    if not isinstance(model, Sequential):
        raise UsageError("activations are drawn for a net made of layers, such as simple_net")
    h = torch.as_tensor(to_numpy(x), dtype=torch.float32).reshape(1, -1)  # (1, 784)
    out = [("input", h[0].numpy().astype(np.float64))]
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            h = layer(h)  # (1, width)
            out.append((f"{i}: {layer!r}", h[0].detach().cpu().numpy().astype(np.float64)))
    return out


def activations_figure(
    model: Any, x: Any, digits: Sequence[int] = (2, 9), title: str = "", *, source: str = ""
) -> Figure:
    """One image passing through the net: the image, each layer's output as bars
    (after a ReLU the negative ones are gone), and the final probabilities.

    Each bar chart's heights are that layer's outputs for this image, in order.
    """
    acts = activations(model, x)
    n_panels = len(acts) + 1  # the image, each layer, the probabilities
    fig = _new_figure(min(3.0 * n_panels, 18), 3.2)
    axes = fig.subplots(1, n_panels, width_ratios=[1] + [1.6] * (n_panels - 1))
    axes[0].imshow(
        as_image(acts[0][1]), cmap=INK, vmin=0, vmax=_ink_max(acts[0][1]), interpolation="nearest"
    )
    _hide_axes(axes[0])
    axes[0].set_title("input (white ink\non black, as MNIST)", fontsize=8)
    for ax, (name, v) in zip(axes[1:-1], acts[1:], strict=True):
        ax.bar(np.arange(len(v)), v, color=np.where(v > 0, "tab:blue", "tab:red"))
        ax.axhline(0, color="#555", lw=0.6)
        ax.set_title(name, fontsize=9)
        if len(v) == 1:  # the pair's one output: a score, > 0 leaning to the first label
            ax.set_xticks([0], [f"score {v[0]:+.2f}"])
        else:
            ax.set_xlabel("unit")
    import torch

    from groundup.learn.task import Task

    probs = Task(digits).probabilities(torch.as_tensor(acts[-1][1])[None, :])[0].numpy()
    ax = axes[-1]
    names = _names(digits[: len(probs)], source)
    ax.bar(names, probs, color="tab:green")
    _tilt_if_long(ax, names)
    ax.set_ylim(0, 1)
    ax.set_title(f"probability of each {_word(source)}", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def weight_histogram_figure(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], bins: int = 40
) -> Figure:
    """How the weights are spread, one panel per parameter: before training (grey) and
    after (blue). `before` and `after` map a parameter's name to its values (a
    `state_dict()`); `before` may be None when the initial weights are unknown."""
    names = list(after)
    if not names:
        raise UsageError("this model has no parameters to draw")
    fig = _new_figure(min(3.2 * len(names), 14), 3.0)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        a = to_numpy(after[name]).ravel()
        b = None if before is None or name not in before else to_numpy(before[name]).ravel()
        both = a if b is None else np.concatenate([a, b])
        edges = np.histogram_bin_edges(both, bins=bins if both.size > 1 else 1)
        if b is not None:
            ax.hist(b, bins=edges, color="#999", alpha=0.6, label="before")
        ax.hist(a, bins=edges, color="tab:blue", alpha=0.6, label="after")
        ax.set_title(f"{name} ({a.size} values)", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("weights before and after training" if before is not None else "weights")
    return fig


def confusion_figure(
    matrix: Any, digits: Sequence[int], title: str = "", *, source: str = ""
) -> Figure:
    """Counts of (true label, predicted label): the diagonal is right, the rest mistakes.

    matrix: (C, C) as `groundup.runs.evaluate.confusion_matrix` gives (rows true). The
    image's array is the matrix itself, so its sum is the number of images.
    """
    m = to_numpy(matrix)
    n = len(m)
    room = 0.07 * max((len(s) for s in _names(digits, source)), default=1)  # long names
    fig = _new_figure(1.0 + 0.55 * n + 1.2 + room, 0.8 + 0.55 * n + 0.6 + room)
    ax = fig.add_subplot()
    ax.imshow(m, cmap="Blues", interpolation="nearest")
    for (r, c), v in np.ndenumerate(m):
        ax.text(
            c,
            r,
            f"{int(v)}",
            ha="center",
            va="center",
            fontsize=9,
            color="white" if v > m.max() / 2 else "black",
        )
    labels, word = _names(digits, source), _word(source)
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    _tilt_if_long(ax, labels)
    ax.set_xlabel(f"predicted {word}")
    ax.set_ylabel(f"true {word}")
    total, right = int(m.sum()), int(np.trace(m))
    wrong = total - right
    ax.set_title(
        title or f"{right} of {total} right, {wrong} mistake{'s' * (wrong != 1)}", fontsize=10
    )
    return fig


def top_losses(probs: Any, true_class: Any, k: int = 9, mistakes_only: bool = True) -> np.ndarray:
    """Indices of the k images with the highest loss, highest first.

    An image's loss rises as the probability p given to its true digit falls (the
    article's mnist_loss is 1 - p; cross-entropy is -log p), so we rank by p. With
    `mistakes_only`, only images whose predicted digit is wrong are kept: these are
    the model's most confident mistakes.
    """
    p = to_numpy(probs)
    t = to_numpy(true_class).astype(np.int64)
    right = p[np.arange(len(t)), t]  # (N,)
    order = np.argsort(right, kind="stable")
    if mistakes_only:
        wrong = p.argmax(axis=1) != t
        order = order[wrong[order]]
    return order[:k]


def top_losses_figure(
    images: Any,
    probs: Any,
    true_class: Any,
    digits: Sequence[int],
    k: int = 9,
    *,
    source: str = "",
) -> Figure:
    """The most confident mistakes: each image with what the model said and the truth.

    images: (N, 784); probs: (N, C); true_class: (N,). Titles read
    "said 9 (0.97), is 2", from the highest loss down; with `source` a class
    name, "said 6 Shirt (0.97)" over "is 0 T-shirt/top".
    """
    p = to_numpy(probs)
    t = to_numpy(true_class).astype(np.int64)
    idx = top_losses(p, t, k)
    if len(idx) == 0:
        fig = _new_figure(5, 1.2)
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"no mistakes on these {len(t)} images", ha="center", va="center")
        return fig
    imgs = to_numpy(images).reshape(len(t), -1)[idx]
    pred = p[idx].argmax(axis=1)
    names = _names(digits, source)
    # a class name is long: the truth goes on a line of its own
    sep = ", " if max(len(s) for s in names) <= 2 else "\n"
    titles = [
        f"said {names[pr]} ({p[i, pr]:.2f}){sep}is {names[t[i]]}"
        for i, pr in zip(idx, pred, strict=True)
    ]
    heading = (
        "the most confident mistake"
        if len(idx) == 1
        else (f"the {len(idx)} most confident mistakes")
    )
    return digits_figure(imgs, titles, max_cols=min(len(idx), 5), title=heading)
