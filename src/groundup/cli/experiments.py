"""`groundup compare` and `groundup lr-find`: experiments on the training settings."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from groundup.cli import add_debug, options
from groundup.errors import UsageError

# the settings compare can vary (each takes a comma list), and the ones it holds fixed
COMPARED = ("init", "batch_size", "opt", "lr", "model")
FIXED = ("hidden", "std", "epochs", "augment", "device")
LR_FIND_SETTINGS = (
    "model",
    "hidden",
    "init",
    "std",
    "opt",
    "batch_size",
    "augment",
    "seed",
    "device",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="train once per setting and seed, and compare the results",
        description=(
            "Vary one setting, keep the rest, and train once per value and seed. Prints, per "
            "value, the mean ± std over the seeds of the final validation accuracy and loss, "
            "then the accuracy after each epoch and the seconds it took. Give a comma list "
            "to exactly one of --init, --batch-size, --opt, --lr or --model. Examples: "
            "'groundup compare --init normal,xavier,kaiming --seeds 0-4' (was there a better "
            "way to initialise?), 'groundup compare --batch-size full,256,32' (gradient "
            "descent against SGD)."
        ),
    )
    options.add_settings(p, options.DATA)
    g = p.add_argument_group("the setting to compare (a comma list) and the fixed ones")
    for name in COMPARED:
        options.add_setting(g, name, as_list=True)
    for name in ("hidden", "std", "epochs", "augment", "device"):
        options.add_setting(g, name)
    g.add_argument(
        "--seeds",
        default="0",
        metavar="S",
        help="seeds: a range 0-4, a list 0,1,2, or one seed (default 0)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--plot", type=Path, metavar="FILE", help="also save accuracy curves as PNG")
    add_debug(p)
    p.set_defaults(handler=cmd_compare)

    p = subparsers.add_parser(
        "lr-find",
        help="sweep the learning rate to find a good one",
        description=(
            "The learning-rate finder: train one mini-batch per learning rate, raising the "
            "rate by a constant factor each time, from --start to --end, and stop when the "
            "smoothed loss explodes (above 4x its best). Prints a suggested rate (a tenth of "
            "the rate at the lowest loss) and saves the loss curve as a PNG. The weights "
            "are put back afterwards: nothing is trained or saved."
        ),
    )
    options.add_settings(p, options.DATA)
    options.add_settings(p, LR_FIND_SETTINGS, "model and training")
    g = p.add_argument_group("the sweep")
    g.add_argument("--start", type=float, default=1e-5, help="first learning rate (default 1e-5)")
    g.add_argument("--end", type=float, default=10.0, help="last learning rate (default 10)")
    g.add_argument("--num", type=int, default=100, help="mini-batches in the sweep (default 100)")
    p.add_argument(
        "--plot",
        type=Path,
        default=Path("lr-find.png"),
        metavar="FILE",
        help="where to save the plot (default lr-find.png)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not save a plot")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_debug(p)
    p.set_defaults(handler=cmd_lr_find)


def _warn_zeros(inits: list[str], models: list[str]) -> None:
    if "zeros" in inits and any(m not in ("linear", "mean") for m in models):
        from groundup.learn.init import ZEROS_WARNING

        sys.stderr.write(f"groundup: warning: {ZEROS_WARNING}\n")


def cmd_compare(args: argparse.Namespace) -> int:
    from groundup.runs.experiments import compare, parse_seeds, plot_comparison

    seeds = parse_seeds(args.seeds)
    lists = {name: options.split_list(name, getattr(args, name)) for name in COMPARED}
    varied = [name for name, values in lists.items() if len(values) > 1]
    if len(varied) != 1:
        got = ", ".join(options.flag(v) for v in varied) or "none"
        raise UsageError(
            "compare varies exactly one setting: give a comma list to one of "
            f"{', '.join(options.flag(n) for n in COMPARED)} (lists given: {got})"
        )
    setting = varied[0]
    fixed = {name: values[0] for name, values in lists.items() if name != setting}
    config = options.config_from_args(args, (*options.DATA, *FIXED), **fixed)
    _warn_zeros(lists["init"], [config.model] if setting != "model" else lists["model"])

    progress = None
    if not args.json and sys.stderr.isatty():
        total = len(lists[setting]) * len(seeds)
        done = [0]

        def progress(trial: Any) -> None:
            done[0] += 1
            sys.stderr.write(f"\r  {done[0]}/{total} runs")
            sys.stderr.flush()

    result = compare(config, setting, lists[setting], seeds, on_trial=progress)
    if progress is not None:
        sys.stderr.write("\r" + " " * 20 + "\r")
    if args.plot:
        plot_comparison(result, args.plot)
    if args.json:
        out = result.to_dict()
        if args.plot:
            out["plot"] = str(args.plot)
        print(json.dumps(_finite(out)))
        return 0
    _print_comparison(result, args.plot)
    return 0


def _finite(obj: Any) -> Any:
    """JSON has no NaN: a missing mean (every run diverged) becomes null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _print_comparison(result: Any, plot: Path | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from groundup.cli import rich_console
    from groundup.learn.compute import flops_text

    console = rich_console()  # piped: at the natural width, never cut
    c = result.config  # the settings the first run resolved to
    epochs = max((len(t.history) for t in result.trials), default=0)
    seeds = result.seeds
    if len(seeds) == 1:
        seed_text = f"seed {seeds[0]}"
    elif seeds == list(range(seeds[0], seeds[-1] + 1)):
        seed_text = f"mean ± std over seeds {seeds[0]}-{seeds[-1]}"
    else:
        seed_text = f"mean ± std over seeds {','.join(map(str, seeds))}"
    table = Table(title=f"{result.setting} after {epochs} epochs ({seed_text})")
    table.add_column(result.setting)
    table.add_column("valid accuracy", justify="right")
    table.add_column("valid loss", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("training FLOPs", justify="right")
    for row in result.summary():
        acc = _pm(row["accuracy_mean"], row["accuracy_std"], percent=True)
        loss = _pm(row["valid_loss_mean"], row["valid_loss_std"])
        if row["diverged"]:
            acc += f" ({row['diverged']} of {row['runs']} diverged)"
        flops = flops_text(row["flops_mean"]) if math.isfinite(row["flops_mean"]) else "-"
        table.add_row(str(row["value"]), acc, loss, _seconds(row["seconds_mean"]), flops)
    fixed = {
        "model": c["model"],
        "opt": c["opt"],
        "lr": f"{c['lr']:g}",
        "batch_size": c["batch_size"],
        "augment": "on" if c["augment"] else "off",
    }
    console.print(
        f"data {c['data']}, digits {' '.join(map(str, c['digits']))}; "
        + ", ".join(
            f"{k.replace('_size', '')} {v}" for k, v in fixed.items() if k != result.setting
        ),
        soft_wrap=True,
    )
    console.print(table)

    curves = result.curves()
    table = Table(title="validation accuracy after each epoch (seconds since the start)")
    table.add_column("epoch", justify="right")
    for label in curves:
        table.add_column(f"{result.setting} {label}", justify="right")
    step = max(1, math.ceil(epochs / 20))  # at most ~20 rows
    for e in range(epochs):
        if (e + 1) % step and e + 1 != epochs:
            continue
        cells = []
        for points in curves.values():
            p = points[e] if e < len(points) else None
            cells.append(f"{p['accuracy']:.2%} ({_seconds(p['seconds'])} s)" if p else "-")
        table.add_row(str(e + 1), *cells)
    console.print(table)
    if plot:
        console.print(f"plot saved to {escape(str(plot))}", soft_wrap=True)


def _seconds(s: float) -> str:
    """Milliseconds matter on the sample, tenths on Fashion-MNIST."""
    if not math.isfinite(s):
        return "-"
    return f"{s:.3f}" if s < 10 else f"{s:.1f}"


def _pm(mean: float, std: float, percent: bool = False) -> str:
    if not math.isfinite(mean):
        return "-"
    if percent:
        return f"{mean:.2%} ± {std:.2%}"
    return f"{mean:.4f} ± {std:.4f}"


def cmd_lr_find(args: argparse.Namespace) -> int:
    if args.num < 2:
        raise UsageError(f"--num must be at least 2, not {args.num}")
    if not args.start < args.end:
        raise UsageError(f"--start ({args.start:g}) must be below --end ({args.end:g})")
    # a sweep raises the rate itself: no schedule may set it
    config = options.config_from_args(args, (*options.DATA, *LR_FIND_SETTINGS), schedule="constant")
    _warn_zeros([config.init], [config.model])
    from groundup.runs.lrfind import lr_find, plot_lr_find
    from groundup.runs.training import make_run

    run = make_run(config)
    result = lr_find(run.learner, args.start, args.end, args.num)
    plot = None if args.no_plot else plot_lr_find(result, args.plot)
    if args.json:
        out = result.to_dict()
        out["plot"] = str(plot) if plot else None
        print(json.dumps(_finite(out)))
        return 0
    c = run.config
    print(
        f"data {c.data}, digits {' '.join(map(str, c.digits))}, model {c.model}, opt {c.opt}, "
        f"batch {c.batch_size}: {len(result.lrs)} mini-batches from lr {args.start:g} "
        f"({result.stop_reason})"
    )
    if not math.isfinite(result.suggestion):
        print("too few mini-batches to suggest a rate: raise --num or lower --start")
        return 1
    print(f"lowest smoothed loss {min(result.losses):.4f} at lr {result.min_loss_lr:.3g}")
    if result.min_loss_lr == result.lrs[-1]:
        print("  the loss was still falling at the end of the sweep: a larger --end may help")
    print(f"steepest fall at lr {result.steepest_lr:.3g}")
    print(f"suggested learning rate: {result.suggestion:.3g}  (--lr {result.suggestion:.2g})")
    if plot:
        print(f"plot saved to {plot}")
    return 0
