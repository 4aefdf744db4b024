"""`groundup report` and `groundup figure NAME`: see a run, and each of the article's pictures.

    groundup report RUN_DIR [--out report.html]
    groundup figure weights RUN_DIR --out w.png
    groundup figure sigmoid --out s.svg
    groundup figure digit --data sample --digit 2 --index 0

Each figure is a function of `groundup.show.figures`; these commands find its inputs
(a data source, a run directory) and write it as PNG or SVG, chosen by --out's suffix.
matplotlib is imported only inside the handlers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from groundup.cli import add_debug
from groundup.errors import DataError, UsageError

DATA_HELP = "data source: sample (default), mnist, fashion-mnist, kmnist, or a folder"

# name -> (help, needs a run directory)
FIGURES: dict[str, tuple[str, bool]] = {
    "digit": ("one image of the data, as the model sees it", False),
    "pixels": ("one image as its 28x28 table of numbers (HTML, PNG or SVG)", False),
    "steps": ("the seven steps of learning as a flow diagram", False),
    "descent": ("gradient descent on y = x^2, with the tangent at each step", False),
    "sigmoid": ("the sigmoid, 1 / (1 + e^-x)", False),
    "curves": ("a run's loss and accuracy per epoch", True),
    "predictions": ("what a run's model says about the validation images", True),
    "weights": ("a linear model's weights as 28x28 maps: which pixels vote for which digit", True),
    "histogram": ("a run's weights before and after training", True),
    "layers": ("simple_net: its 30 neurons' weight images and the second layer's weights", True),
    "activations": ("simple_net: one validation image passing through the layers", True),
    "confusion": ("a run's confusion matrix on the validation set", True),
    "top-losses": ("a run's most confident mistakes, with their images", True),
    "accuracy-vs-compute": (
        "validation accuracy against training FLOPs for the four models (saved runs, "
        "or trained now on all ten digits)",
        False,
    ),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write one self-contained HTML page that walks through a run",
        description=(
            "Write an HTML report of a run, by the seven steps: the data, the initialisation, "
            "the first predictions, the loss, the training curves, what the weights learned, "
            "and the mistakes. The pictures are inside the file, so it opens offline and can "
            "be mailed as it is."
        ),
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run saved by groundup train")
    p.add_argument("--out", type=Path, metavar="FILE", help="default: RUN_DIR/report.html")
    p.add_argument("--data", metavar="SRC", help="validation data (default: the run's own)")
    add_debug(p)
    p.set_defaults(handler=cmd_report)

    fig = subparsers.add_parser(
        "figure",
        help="draw one of the article's pictures, for the data or for a run",
        description=(
            "Draw one figure and write it as PNG or SVG (by the suffix of --out). "
            "Figures of a run take its directory: 'groundup figure weights runs/demo'."
        ),
        epilog="Run 'groundup figure NAME --help' for a figure's options.",
    )
    add_debug(fig)
    fig.set_defaults(handler=lambda args: _usage(fig))
    names = fig.add_subparsers(dest="figure", metavar="NAME", parser_class=type(fig))
    for name, (text, needs_run) in FIGURES.items():
        sp = names.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        if needs_run:
            sp.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a saved run")
        default = "pixels.html" if name == "pixels" else f"{name}.png"
        sp.add_argument(
            "--out",
            type=Path,
            default=Path(default),
            metavar="FILE",
            help=f"file to write, .png or .svg{' or .html' if name == 'pixels' else ''} "
            f"(default {default})",
        )
        sp.add_argument("--dpi", type=int, default=100, help="PNG resolution (default 100)")
        _add_options(name, sp)
        add_debug(sp)
        sp.set_defaults(handler=cmd_figure)


def _add_options(name: str, p: argparse.ArgumentParser) -> None:
    """The options particular to one figure."""
    if name in ("digit", "pixels"):
        p.add_argument("--data", default="sample", metavar="SRC", help=DATA_HELP)
        p.add_argument(
            "--split",
            choices=("train", "valid"),
            default="train",
            help="which split (default train)",
        )
        p.add_argument(
            "--digit",
            type=int,
            metavar="D",
            help="count --index among the images of this digit only",
        )
        p.add_argument(
            "--index",
            type=int,
            default=0,
            metavar="I",
            help="which image, counting from 0 (default 0)",
        )
    if name == "pixels":
        p.add_argument(
            "--rows",
            type=_window,
            default=(0, 28),
            metavar="A:B",
            help="rows A to B-1 only, e.g. 4:15 as in the article (default 0:28)",
        )
        p.add_argument(
            "--cols",
            type=_window,
            default=(0, 28),
            metavar="A:B",
            help="columns A to B-1 only, e.g. 4:22 (default 0:28)",
        )
    if name == "descent":
        p.add_argument("--x0", type=float, default=1.5, help="starting weight (default 1.5)")
        p.add_argument("--lr", type=float, default=0.2, help="learning rate (default 0.2)")
        p.add_argument("--steps", type=int, default=6, help="number of steps (default 6)")
    if name in ("predictions", "activations", "confusion", "top-losses"):
        p.add_argument("--data", metavar="SRC", help="validation data (default: the run's own)")
    if name == "accuracy-vs-compute":
        p.add_argument("run_dirs", nargs="*", type=Path, metavar="RUN_DIR",
                       help="saved runs to draw (default: train mean, linear, net and cnn)")
        p.add_argument("--data", default="sample", metavar="SRC",
                       help="data to train the four models on, all ten digits (default sample)")
        p.add_argument("--epochs", type=int, metavar="N",
                       help="train each model this many epochs (default: its own default)")
    if name == "predictions":
        p.add_argument(
            "--initial", action="store_true", help="the model before training instead of after"
        )
    if name == "activations":
        p.add_argument(
            "--index", type=int, default=0, metavar="I", help="which validation image (default 0)"
        )
    if name == "top-losses":
        p.add_argument("-k", type=int, default=9, help="how many mistakes to show (default 9)")


def _window(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be A:B, like 4:15, not {text!r}") from None
    if not 0 <= a < b <= 28:
        raise argparse.ArgumentTypeError(f"must satisfy 0 <= A < B <= 28, not {text}")
    return a, b


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def cmd_report(args: argparse.Namespace) -> int:
    from groundup.show.report import write_report

    path = write_report(args.run_dir, args.out, args.data)
    print(f"report written to {path}")
    return 0


def pick_image(data: str, split: str, digit: int | None, index: int) -> tuple[Any, int]:
    """The `index`-th image (of `digit`, if given) of a split: ((28, 28) uint8, its label)."""
    import numpy as np

    from groundup.data.sources import load_source

    images, labels = load_source(data).split(split)
    rows = np.arange(len(labels)) if digit is None else np.flatnonzero(labels == digit)
    if len(rows) == 0:
        raise DataError(f"the {split} split of {data!r} has no image of the digit {digit}")
    what = f"{len(rows)} images" + ("" if digit is None else f" of the digit {digit}")
    if not 0 <= index < len(rows):
        raise UsageError(
            f"--index {index} is out of range: the {split} split has {what} (0 to {len(rows) - 1})"
        )
    row = int(rows[index])
    return images[row], int(labels[row])


def _figure_of(args: argparse.Namespace) -> Any:
    """Build the figure `args.figure` asks for."""
    from groundup.show import figures as F

    name = args.figure
    if name == "digit":
        from groundup.data.sources import class_name

        image, label = pick_image(args.data, args.split, args.digit, args.index)
        return F.digit_figure(image, f"a {class_name(args.data, label)} ({args.split} image)")
    if name == "pixels":
        image, _ = pick_image(args.data, args.split, args.digit, args.index)
        return F.pixel_table_figure(image, args.rows, args.cols)
    if name == "steps":
        return F.steps_figure()
    if name == "descent":
        return F.descent_figure(args.x0, args.lr, args.steps)
    if name == "sigmoid":
        return F.sigmoid_figure()
    if name == "accuracy-vs-compute":
        return _compute_figure(args, F)
    return _run_figure(args, F)


def _compute_figure(args: argparse.Namespace, F: Any) -> Any:
    from groundup.learn.compute import flops_text
    from groundup.runs.experiments import accuracy_vs_compute

    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, not {args.epochs}")
    if not args.run_dirs:
        print(f"training mean, linear, net and cnn on {args.data}, all ten digits", flush=True)

    def progress(p: dict[str, Any]) -> None:
        cost = flops_text(p["training_flops"])
        print(f"  {p['model']}: {p['accuracy']:.2%} for {cost} ({p['seconds']:.1f} s)", flush=True)

    points = accuracy_vs_compute(args.run_dirs, args.data, args.epochs, on_run=progress)
    return F.accuracy_compute_figure(points)


def _run_figure(args: argparse.Namespace, F: Any) -> Any:
    from groundup.learn.models import Linear
    from groundup.runs.saved import load_run

    name = args.figure
    run = load_run(args.run_dir)
    source = run.meta.get("data", {}).get("source", "")  # names the labels (Fashion-MNIST)
    if name == "curves":
        return F.curves_figure(run.meta.get("history", []), title=str(args.run_dir))
    if name == "weights":
        if not isinstance(run.model, Linear):
            raise UsageError(
                f"the weights figure is for the linear model; this run's model is "
                f"{run.spec.name!r} (for 'net', try 'groundup figure layers')"
            )
        w, b = F.linear_weights(run.model)
        return F.weights_figure(w, run.digits, b, source=source)
    if name == "layers":
        from groundup.show.view import initial_model

        return F.layers_figure(run.model, run.digits, init=initial_model(run), source=source)
    if name == "histogram":
        from groundup.show.view import initial_model

        return F.weight_histogram_figure(initial_model(run).state_dict(), run.model.state_dict())
    from groundup.show.view import confusion, view_run

    view = view_run(run, args.data)
    source = view.raw.name
    if name == "predictions":
        probs = view.init_probs if args.initial else view.probs
        title = "before training" if args.initial else "after training"
        return F.predictions_figure(probs, view.true, view.digits, title, source=source)
    if name == "activations":
        if not 0 <= args.index < len(view.valid):
            raise UsageError(f"--index {args.index} is out of range: 0 to {len(view.valid) - 1}")
        from groundup.data.sources import class_name

        label = class_name(source, view.digits[int(view.true[args.index])])
        return F.activations_figure(
            run.model,
            view.valid.x[args.index],
            view.digits,
            title=f"validation image {args.index}, a {label}",
            source=source,
        )
    if name == "confusion":
        return F.confusion_figure(confusion(view), view.digits, source=source)
    if name == "top-losses":
        if args.k < 1:
            raise UsageError(f"-k must be at least 1, not {args.k}")
        return F.top_losses_figure(
            view.valid.x, view.probs, view.true, view.digits, args.k, source=source
        )
    raise UsageError(f"unknown figure {name!r}")  # argparse's choices make this unreachable


def cmd_figure(args: argparse.Namespace) -> int:
    from groundup.show.figures import save_figure

    if not 10 <= args.dpi <= 600:
        raise UsageError(f"--dpi must be between 10 and 600, not {args.dpi}")
    out: Path = args.out
    if args.figure == "pixels" and out.suffix.lower() in (".html", ".htm"):
        from groundup.atomic import atomic_write_bytes
        from groundup.data.sources import class_name
        from groundup.show.figures import pixel_table_html

        image, number = pick_image(args.data, args.split, args.digit, args.index)
        label = class_name(args.data, number)
        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>the pixels of a {label}</title></head><body>"
            + pixel_table_html(
                image,
                args.rows,
                args.cols,
                title=f"the pixels of a {label} ({args.data}, {args.split} split): "
                "0 is the black background, 255 full white ink, as MNIST stores them",
            )
            + "</body></html>\n"
        )
        atomic_write_bytes(out, page.encode())
    else:
        if out.suffix.lower() not in (".png", ".svg"):
            extra = ", .svg or .html" if args.figure == "pixels" else " or .svg"
            raise UsageError(f"--out {out}: the file must end in .png{extra}")
        save_figure(_figure_of(args), out, args.dpi)
    print(f"{args.figure} written to {out}")
    return 0
