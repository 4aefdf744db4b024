"""`groundup train`, `groundup evaluate` and `groundup predict`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groundup.cli import add_debug, options
from groundup.errors import DivergenceError
from groundup.runs.config import TrainConfig

if TYPE_CHECKING:
    from groundup.distributed import Worker


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a digit classifier and save it as a run directory",
        description=(
            "Train a model with the seven steps: initialise, predict, loss, gradient, step, "
            "repeat, stop. The defaults train the article's pair, a 2 against a 9, on the "
            "bundled sample with plain SGD. The article's own recipe is "
            "'--init normal --std 1.0'. Under torchrun ('torchrun --nproc-per-node 2 -m "
            "groundup train ...') each worker trains on its share of every batch and rank 0 "
            "alone prints and saves."
        ),
    )
    add_train_options(p)
    p.add_argument(
        "--dist-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="under torchrun: seconds a worker waits for the others, to meet and at each "
        "gradient exchange, before the run stops with an error (default 300)",
    )
    p.add_argument("--out", type=Path, help="run directory to write (default: runs/<time>-<model>)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="print nothing but errors: no progress bar, table or summary "
        "(--json prints the result as one line instead)",
    )
    p.add_argument(
        "--report", action="store_true", help="also write RUN_DIR/report.html (see groundup report)"
    )
    add_debug(p)
    p.set_defaults(handler=cmd_train)

    p = subparsers.add_parser(
        "evaluate",
        help="report a saved model's accuracy, loss and confusion counts",
        description="Evaluate a run directory on the validation split of its data (or --data).",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--data", metavar="SRC", help="data source (default: the one it was trained on)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_debug(p)
    p.set_defaults(handler=cmd_evaluate)

    p = subparsers.add_parser(
        "predict",
        help="predict the digit in image files with a saved model",
        description=(
            "Predict the digit in each image. Photos and drawings are prepared as MNIST's "
            "digits were: grayscale, inverted if the ink is dark, cropped to the ink, fit in "
            "20x20 and centred by centre of mass in 28x28. A file that cannot be read is "
            "reported and the others are still predicted; the exit code is then 1."
        ),
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_debug(p)
    p.set_defaults(handler=cmd_predict)


TRAIN_SETTINGS = (*options.DATA, *options.MODEL, *options.TRAINING, *options.STOPPING)


def add_train_options(p: argparse.ArgumentParser) -> None:
    """Every setting of a run, each from its `TrainConfig` field."""
    options.add_settings(p, options.DATA)
    options.add_settings(p, options.MODEL, "model")
    g = p.add_argument_group("training")
    for name in options.TRAINING:
        options.add_setting(g, name)
    options.add_full_batch(g)
    options.add_settings(p, options.STOPPING, "stopping")


def cmd_train(args: argparse.Namespace) -> int:
    config = options.config_from_args(args, TRAIN_SETTINGS)
    from groundup.distributed import worker_from_env

    worker = worker_from_env(os.environ)  # torchrun sets RANK, WORLD_SIZE, ...; else None
    if worker is not None and worker.world_size > 1:
        return _train_as_worker(args, config, worker)
    return _train(args, config)


def _train_as_worker(args: argparse.Namespace, config: TrainConfig, worker: Worker) -> int:
    """One worker of `torchrun ... -m groundup train`: join the others, train on this
    worker's share of every batch, and (rank 0 only) print and save.

    A lost worker ends the run with one line and exit code 1, before anything is saved.
    """
    from groundup import distributed

    config = replace(config, device=distributed.worker_device(config.device, worker.local_rank))
    with distributed.sigterm_as_error(worker):
        backend = distributed.init_distributed(worker, config.device, args.dist_timeout)
        try:
            with distributed.peer_failures_reported(worker):
                return _train(args, config, worker, backend)
        finally:
            distributed.shutdown()


def _train(
    args: argparse.Namespace, config: TrainConfig, worker: Worker | None = None, backend: str = ""
) -> int:
    main = worker is None or worker.is_main  # only rank 0 prints and writes files
    if main and config.init == "zeros" and config.model not in ("linear", "mean"):
        from groundup.learn.init import ZEROS_WARNING

        sys.stderr.write(f"groundup: warning: {ZEROS_WARNING}\n")
    from groundup.learn.callbacks import EpochPrinter, ProgressBar
    from groundup.runs.saved import save_run
    from groundup.runs.training import make_run

    show = main and not (args.quiet or args.json)
    cbs: list[Any] = []
    if show:
        from rich.console import Console

        rows = Console(highlight=False)  # stdout
        cbs.append(EpochPrinter(rows))
        if sys.stderr.isatty():
            # One terminal for both: the bar draws on the rows' console, so that rich
            # prints each row above the live bar. Rows piped to a file: bar on stderr.
            cbs.append(ProgressBar(rows if sys.stdout.isatty() else None))
    rank, world_size = (worker.rank, worker.world_size) if worker else (0, 1)
    previous = None
    if args.out is not None and main:
        from groundup.runs.saved import check_run_dir_writable

        recover_and_say(args.out)  # what an interrupted save left beside it
        check_run_dir_writable(args.out)  # before training, not after it
        previous = _previous_score(args.out, config)
    run = make_run(config, cbs=cbs, rank=rank, world_size=world_size)
    config, learn = run.config, run.learner
    if worker:
        run.extra = {"distributed": {"workers": world_size, "backend": backend}}
    if show:
        dls = learn.dls
        if config.model == "mean":  # no weights to initialise or step: say what it does
            how = "model mean: the nearest class-mean image, fitted in one pass"
        else:
            how = (
                f"model {config.model}, init {config.init}, opt {config.opt}, "
                f"lr {config.lr:g}, batch {config.batch_size}"
            )
        print(
            f"data: {dls.source}, digits {' '.join(map(str, config.digits))}: "
            f"{len(dls.train.dataset)} train, {len(dls.valid.dataset)} valid | "
            f"{how}, device {learn.device}"
            + (f" | {world_size} workers ({backend})" if worker else "")
        )
    start = time.perf_counter()
    try:
        run.fit()
    except DivergenceError as err:
        kept = (
            f"; {args.out} is left as it was"
            if args.out is not None and Path(args.out).exists()
            else ""
        )
        raise DivergenceError(
            f"{err.what or err}: try a smaller --lr (nothing was saved{kept})"
        ) from err
    seconds = time.perf_counter() - start
    if not main:
        return 0
    claimed = args.out is None
    out = args.out or _new_run_dir(config.model)
    try:
        save_run(out, run)
    except BaseException:
        if claimed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # the name we claimed, still empty: leave nothing behind
        raise
    report = None
    if args.report:
        from groundup.show.report import write_report

        report = write_report(out)
    final = learn.history[-1]
    worse = previous is not None and final["accuracy"] < previous
    if args.json:
        result = {
            "epochs": [
                {k: row[k] for k in ("epoch", "train_loss", "valid_loss", "accuracy", "seconds")}
                for row in learn.history
            ],
            "final": {"accuracy": final["accuracy"], "valid_loss": final["valid_loss"]},
            "run_dir": str(out),
        }
        if worse:
            result["replaced_better_run"] = {"accuracy": previous}
        if report is not None:
            result["report"] = str(report)
        print(json.dumps(result))
    elif not args.quiet:
        why = f" ({learn.stop_reason})" if learn.stop_reason else ""
        print(
            f"done: {len(learn.history)} epoch{'s' if len(learn.history) != 1 else ''} "
            f"in {seconds:.2f} s{why}; "
            f"valid accuracy {final['accuracy']:.4f}, valid loss {final['valid_loss']:.4f}; "
            f"saved to {out}"
        )
        if worse:
            print(
                f"note: {out} held an earlier run that scored better (valid accuracy "
                f"{previous:.4f}, now {final['accuracy']:.4f}); it has been replaced"
            )
    if report is not None and not args.json:
        print(f"report written to {report}")
    return 0


def recover_and_say(run_dir: Path) -> None:
    """Repair what an interrupted save left beside `run_dir`, with a note for each repair."""
    from groundup.runs.saved import recover_run_dir

    for note in recover_run_dir(run_dir):
        sys.stderr.write(f"groundup: note: {note}\n")


def _previous_score(run_dir: Path, config: TrainConfig) -> float | None:
    """The valid accuracy of the run now in `run_dir`, if it is the same task (digits and
    data): the summary then says when the new run scored worse than the one it replaces."""
    try:
        meta = json.loads((Path(run_dir) / "model.json").read_text())
        same = list(meta["digits"]) == list(config.digits) and meta["config"]["data"] == config.data
        accuracy = meta["final"]["accuracy"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no run there, or one we cannot compare with
    ok = isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool)
    return float(accuracy) if same and ok else None


def _new_run_dir(model: str) -> Path:
    """runs/<date>-<time>-<model>, with -2, -3, ... if two runs end in the same second.

    The name is claimed by creating the (empty) folder, which only one process can do,
    so two runs started together cannot both pick it and overwrite each other."""
    base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{model}"
    base.parent.mkdir(parents=True, exist_ok=True)
    out, k = base, 1
    while True:
        try:
            out.mkdir()
            return out
        except FileExistsError:
            k += 1
            out = base.with_name(f"{base.name}-{k}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from groundup.runs.evaluate import evaluate_run
    from groundup.runs.saved import load_run

    recover_and_say(args.run_dir)
    run = load_run(args.run_dir)
    result = evaluate_run(run, args.data)
    trained_on = run.meta.get("data", {}).get("source")
    # a folder source is saved as an absolute path: compare both resolved
    if args.data and trained_on and Path(result["source"]).resolve() != Path(trained_on).resolve():
        sys.stderr.write(
            f"groundup: note: this model was trained on {trained_on}, "
            f"and is evaluated here on {result['source']}\n"
        )
    if args.json:
        print(json.dumps(result))
        return 0
    from rich.markup import escape
    from rich.table import Table

    from groundup.cli import rich_console

    console = rich_console()  # piped: at the natural width, never cut
    console.print(
        f"{escape(str(args.run_dir))}: {escape(result['source'])}, "
        f"{result['n']} validation images | "
        f"accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}",
        soft_wrap=True,  # one line even when piped (rich would wrap at 80 columns)
    )
    from groundup.data.sources import class_name, class_word

    digits = result["digits"]
    word = class_word(result["source"])  # Fashion-MNIST's labels are clothes, not digits
    console.print(
        f"confusion counts: rows are the true {word}, columns the predicted one", soft_wrap=True
    )
    table = Table()
    table.add_column("true")
    for d in digits:
        table.add_column(class_name(result["source"], d), justify="right")
    for d, row in zip(digits, result["confusion"]):
        table.add_row(class_name(result["source"], d), *(str(c) for c in row))
    console.print(table)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import torch

    from groundup.data.images import prepare_digit
    from groundup.errors import DataError
    from groundup.runs.saved import load_run

    recover_and_say(args.run_dir)
    run = load_run(args.run_dir)
    results, failed = [], 0
    for path in args.images:
        try:
            x = torch.from_numpy(prepare_digit(path)).reshape(1, 784)
        except DataError as err:
            failed += 1
            results.append({"image": str(path), "error": str(err)})
            if not args.json:
                sys.stderr.write(f"groundup: error: {err}\n")
            continue
        if hasattr(run.model, "distances"):  # the mean model: distances, not probabilities
            entry = _nearest_mean(run, x, path)
            results.append(entry)
            if not args.json:
                print(
                    f"{path}: {entry['digit']} (the nearest class-mean image: RMSE distance "
                    f"{entry['distance']:.4f}; the next, {entry['runner_up']}, at "
                    f"{entry['distances'][str(entry['runner_up'])]:.4f}; a distance, not a "
                    "probability)"
                )
            continue
        probs = run.predict_proba(x)[0]
        best = int(probs.argmax())
        entry = {
            "image": str(path),
            "digit": run.digits[best],
            "probability": round(float(probs[best]), 4),
            "probabilities": {str(d): round(float(p), 4) for d, p in zip(run.digits, probs)},
        }
        results.append(entry)
        if not args.json:
            print(f"{path}: {entry['digit']} (probability {entry['probability']:.4f})")
    if args.json:
        print(json.dumps({"predictions": results}))
    return 1 if failed else 0


def _nearest_mean(run: Any, x: Any, path: Path) -> dict[str, Any]:
    """The `mean` model's answer for one image: the class whose mean image is nearest,
    with the distance to every class mean. Its softmax over negative distances would
    read as probabilities near 1/C for every class, which says nothing, so the score
    reported is the distance itself (root mean squared difference, 0 to 1)."""
    d = run.model.distances(x)[0]  # (C,)
    order = d.argsort().tolist()
    return {
        "image": str(path),
        "digit": run.digits[order[0]],
        "score": "distance",
        "distance": round(float(d[order[0]]), 4),
        "runner_up": run.digits[order[1]],
        "distances": {str(k): round(float(v), 4) for k, v in zip(run.digits, d)},
    }
