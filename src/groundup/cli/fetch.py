"""`groundup fetch NAME`: download MNIST, Fashion-MNIST or KMNIST for `--data NAME`.

The download itself (mirrors, checksums, the user cache, atomic files) is
`groundup.data.fetch`; this module is its command line. `groundup data` looks at
what it fetched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from groundup.cli import add_debug

# The same names as groundup.data.sources.NAMED, repeated here so that `--help` need not
# import numpy (a test keeps the two equal).
DATASETS = ("mnist", "fashion-mnist", "kmnist")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `fetch` to the top-level command line."""
    p = subparsers.add_parser(
        "fetch",
        help="download MNIST, Fashion-MNIST or KMNIST (for --data NAME)",
        description=(
            "Download the four IDX files of a dataset from its public mirrors and check "
            "their published MD5 checksums. Files go to the user cache "
            "($XDG_CACHE_HOME/groundup/NAME or ~/.cache/groundup/NAME) unless --dest is "
            "given; afterwards '--data NAME' finds them. A failed or corrupt download "
            "leaves no file behind, and files already present and intact are kept."
        ),
    )
    p.add_argument("name", choices=DATASETS, metavar="NAME", help=" | ".join(DATASETS))
    p.add_argument("--dest", type=Path, metavar="DIR", help="folder to download into")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    add_debug(p)
    p.set_defaults(handler=cmd_fetch)


def cmd_fetch(args: argparse.Namespace) -> int:
    """Download a dataset's IDX files and say how to use them."""
    import json

    from groundup.data.fetch import fetch

    dest = fetch(args.name, args.dest)
    use = args.name if args.dest is None else str(dest)
    if args.json:
        print(json.dumps({"name": args.name, "dir": str(dest), "use": f"--data {use}"}))
        return 0
    print(f"{args.name}: the four IDX files are in {dest}; use them with --data {use}")
    return 0
