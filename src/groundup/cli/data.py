"""`groundup data info|show|ls|export`: look at the data before learning.

The article begins by looking: it lists the folders (`path.ls()`), opens one image
and shows it as a table of numbers shaded by value. These commands do the same
for any source. Heavy imports (numpy, rich, Pillow) happen inside the handlers.

This module holds the options of every action and the handlers of info, ls and
export; `show`, one image as its pixels, is pixels.py. `groundup fetch`, which
downloads a named source, is fetch.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groundup.cli import add_debug
from groundup.cli.pixels import cmd_show

if TYPE_CHECKING:
    from rich.console import Console

DATA_HELP = (
    "where the digits come from: sample (the bundled 5,000 MNIST digits, the default), "
    "mnist, fashion-mnist or kmnist (after 'groundup fetch NAME'), an IDX directory, "
    "or an image folder laid out as ROOT/train/<digit>/*.png and ROOT/valid/<digit>/*.png"
)
FIRST_FILES = 3  # how many file names `data ls` shows per class folder


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `data`, with its actions, to the top-level command line."""
    data = subparsers.add_parser(
        "data",
        help="look at a data source: info, show, ls, export",
        description=(
            "Look at the digits before learning from them, as the article does: what a "
            "source holds (ls), per-class counts and pixel statistics (info), one image as "
            "its table of pixel values (show), and writing a source out as an image "
            "folder (export)."
        ),
        epilog="Run 'groundup data ACTION --help' for an action's options.",
    )
    add_debug(data)
    data.set_defaults(handler=lambda args: _usage(data))
    actions = data.add_subparsers(dest="data_action", metavar="ACTION", parser_class=type(data))

    p = actions.add_parser(
        "info",
        help="count the images and summarise their pixels, per split and digit",
        description=(
            "For each split (train, valid) and each chosen digit: how many images, and the "
            "smallest, largest and mean pixel on the [0, 1] scale the model sees "
            "(the stored 0-255 values divided by 255). Also says where the data came from. "
            "A class whose mean is far from the others is a sign of a scaling bug."
        ),
    )
    _add_data(p)
    _add_digits(p, "digits to summarise: a pair (default 2 9), any list such as 3 5 8, or all")
    _add_json(p)
    add_debug(p)
    p.set_defaults(handler=cmd_info)

    p = actions.add_parser(
        "show",
        help="print one image as its 28x28 table of pixel values, shaded by value",
        description=(
            "Print one image as the article does with pandas: a 28x28 table of its pixel "
            "values (0 = black background, 255 = white ink), each cell shaded by its value. "
            "The colours need a terminal; piped, the numbers alone are printed. "
            "--png also writes the picture, enlarged."
        ),
    )
    _add_data(p)
    p.add_argument(
        "--split", choices=("train", "valid"), default="train", help="which split (default train)"
    )
    p.add_argument(
        "--digit",
        type=_digit,
        metavar="D",
        help="count --index among the images of this digit only (default: all images)",
    )
    p.add_argument(
        "--index",
        type=int,
        default=0,
        metavar="I",
        help="which image, counting from 0 (default 0)",
    )
    p.add_argument("--png", type=Path, metavar="FILE", help="also write the image to FILE")
    p.add_argument(
        "--scale",
        type=int,
        default=10,
        metavar="K",
        help="--png draws each pixel as a KxK square (default 10: 280x280)",
    )
    _add_json(p)
    add_debug(p)
    p.set_defaults(handler=cmd_show)

    p = actions.add_parser(
        "ls",
        help="list what a source holds: files, splits, digits and counts",
        description=(
            "The article's path.ls(): the files of a source, its splits and the number of "
            "images of each digit; for an image folder, also the first files of each class."
        ),
    )
    _add_data(p)
    _add_json(p)
    add_debug(p)
    p.set_defaults(handler=cmd_ls)

    p = actions.add_parser(
        "export",
        help="write a source out as an image folder (DIR/train/<digit>/*.png, DIR/valid/...)",
        description=(
            "Write the images of a source as PNG files in the image-folder layout that "
            "--data reads back: DIR/train/<digit>/<i>.png and DIR/valid/<digit>/<i>.png, "
            "where i is the image's index in its split. DIR must be new or empty; it "
            "appears only once complete."
        ),
    )
    _add_data(p)
    _add_digits(p, "digits to export: any list such as 2 9, or all (the default)")
    p.add_argument("--to", type=Path, required=True, metavar="DIR", help="folder to create")
    _add_json(p)
    add_debug(p)
    p.set_defaults(handler=cmd_export)


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="sample", metavar="SRC", help=DATA_HELP)


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead")


def _print_json(obj: object) -> None:
    import json

    print(json.dumps(obj))


def _add_digits(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--digits", nargs="+", metavar="D", help=help)


def _digit(text: str) -> int:
    if text not in tuple("0123456789"):
        raise argparse.ArgumentTypeError(f"a digit is 0 to 9, not {text!r}")
    return int(text)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _console(natural: bool = False) -> Console:
    from groundup.cli import rich_console

    return rich_console(natural)


# --- handlers --------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    """Per split and digit: count, pixel min, max and mean on [0, 1]."""
    from rich.markup import escape
    from rich.table import Table

    from groundup.data.digits import parse_digits, require_digits
    from groundup.data.sources import load_source

    digits = parse_digits(args.digits)
    raw = load_source(args.data)
    require_digits(raw, digits)
    rows = []
    for split in ("train", "valid"):
        images, labels = raw.split(split)
        for position, digit in enumerate(digits):
            chosen = images[labels == digit]  # (n, 28, 28) uint8
            rows.append({
                "split": split,
                "digit": digit,
                # the model's label: for a pair, the first digit is 1 and the second 0
                "label": (1 - position) if len(digits) == 2 else position,
                "images": len(chosen),
                "min": float(chosen.min()) / 255,
                "max": float(chosen.max()) / 255,
                "mean": float(chosen.mean()) / 255,
            })  # fmt: skip
    if args.json:
        _print_json({
            "source": raw.name, "kind": raw.kind, "origin": raw.origin, "digits": list(digits),
            "pixel_scale": "[0, 1]: the stored 0-255 values / 255", "rows": rows,
        })  # fmt: skip
        return 0
    from groundup.data.sources import class_name, class_word

    word = class_word(raw.name)  # Fashion-MNIST's labels are clothes, not digits
    chosen = " ".join(map(str, digits))
    plural = "classes" if word == "class" else "digits"
    table = Table(title=f"{raw.name}: {plural} {chosen}", title_justify="left")
    for name, justify in [
        ("split", "left"),
        (word, "right"),
        ("label", "right"),
        ("images", "right"),
        ("min", "right"),
        ("max", "right"),
        ("mean", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for split in ("train", "valid"):
        for row in (r for r in rows if r["split"] == split):
            table.add_row(
                split,
                class_name(raw.name, row["digit"]),
                str(row["label"]),
                f"{row['images']:,}",
                f"{row['min']:.3f}",
                f"{row['max']:.3f}",
                f"{row['mean']:.3f}",
            )
        table.add_section()
    console = _console()
    console.print(table)
    # soft_wrap: a sentence stays one line whatever the width, so a long path is not cut
    console.print(
        f"source: {escape(raw.name)} ({raw.kind}), from {escape(raw.origin)}", soft_wrap=True
    )
    console.print(
        "pixels are shown on the [0, 1] scale the model sees: the stored 0-255 values / 255",
        markup=False,
        soft_wrap=True,
    )
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    """What a source holds: its files, splits and per-digit counts."""
    import numpy as np
    from rich.markup import escape
    from rich.tree import Tree

    from groundup.data.sources import list_folder, load_source, locate, split_dirs

    where = locate(args.data)
    if args.json:
        _print_json(_ls_json(where, args.data))
        return 0
    kinds = {"sample": "bundled sample", "idx": "IDX directory", "folder": "image folder"}
    tree = Tree(f"[bold]{escape(where.name)}[/]  {kinds[where.kind]}: {escape(str(where.path))}")
    if where.kind == "folder":
        listing = list_folder(where.path)
        for folder, (split, classes) in zip(split_dirs(where.path), listing.items(), strict=True):
            total = sum(len(files) for files in classes.values())
            role = "" if folder.name == split else f" (the {split} split)"
            branch = tree.add(f"{escape(folder.name)}/{role}  {total:,} images")
            for digit, files in classes.items():
                names = ", ".join(f.name for f in files[:FIRST_FILES])
                more = ", ..." if len(files) > FIRST_FILES else ""
                branch.add(f"{digit}/  {len(files):,} files: {escape(names + more)}")
    else:
        if where.kind == "idx":
            for f in sorted(p for p in where.path.iterdir() if not p.name.startswith(".")):
                if f.is_file():
                    tree.add(f"{escape(f.name)}  {_size(f.stat().st_size)}")
        else:
            tree.add(f"{escape(where.path.name)}  {_size(where.path.stat().st_size)}")
        from groundup.data.sources import class_name, class_word

        raw = load_source(args.data)
        for split in ("train", "valid"):
            _, labels = raw.split(split)
            counts = np.bincount(labels, minlength=10)
            per_class = "  ".join(
                f"{class_name(raw.name, d)}: {n:,}" for d, n in enumerate(counts) if n
            )
            tree.add(f"{split}: {len(labels):,} images; per {class_word(raw.name)}  {per_class}")
    # natural width even in a terminal: rich would cut a long line of the tree at the
    # edge (the counts of 8 and 9 in 100 columns); the terminal folds it instead
    _console(natural=True).print(tree, soft_wrap=True)
    return 0


def _ls_json(where: Any, spec: str) -> dict[str, Any]:
    """`data ls --json`: the same facts as the tree, as one object."""
    import numpy as np

    from groundup.data.sources import list_folder, load_source, split_dirs

    doc: dict[str, Any] = {"name": where.name, "kind": where.kind, "path": str(where.path)}
    if where.kind == "folder":
        listing = list_folder(where.path)
        splits = {}
        for folder, (split, classes) in zip(split_dirs(where.path), listing.items(), strict=True):
            splits[split] = {
                "folder": folder.name,
                "images": sum(len(files) for files in classes.values()),
                "classes": {
                    str(digit): {
                        "files": len(files),
                        "first": [f.name for f in files[:FIRST_FILES]],
                    }
                    for digit, files in classes.items()
                },
            }
        doc["splits"] = splits
        return doc
    files = (
        sorted(p for p in where.path.iterdir() if p.is_file() and not p.name.startswith("."))
        if where.kind == "idx"
        else [where.path]
    )
    doc["files"] = [{"name": f.name, "bytes": f.stat().st_size} for f in files]
    raw = load_source(spec)
    splits = {}
    for split in ("train", "valid"):
        _, labels = raw.split(split)
        counts = np.bincount(labels, minlength=10)
        splits[split] = {
            "images": len(labels),
            "per_digit": {str(d): int(n) for d, n in enumerate(counts) if n},
        }
    doc["splits"] = splits
    return doc


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def cmd_export(args: argparse.Namespace) -> int:
    """Write a source out in the image-folder layout."""
    import numpy as np

    from groundup.data.sources import export, load_source

    if args.digits is None:  # default: every digit the source has
        raw = load_source(args.data)
        digits = tuple(np.union1d(raw.train_labels, raw.valid_labels).tolist())
    else:
        from groundup.data.digits import parse_digits, require_digits

        digits = parse_digits(args.digits)  # usage errors first, before any loading
        raw = load_source(args.data)
        require_digits(raw, digits)
    count = export(raw, args.to, digits)
    if args.json:
        _print_json(
            {
                "source": raw.name,
                "digits": list(digits),
                "images": count,
                "train": str(args.to / "train"),
                "valid": str(args.to / "valid"),
            }
        )
        return 0
    print(
        f"wrote {count:,} images of digits {' '.join(map(str, digits))} from {raw.name} "
        f"to {args.to}/train and {args.to}/valid; read them back with --data {args.to}"
    )
    return 0
