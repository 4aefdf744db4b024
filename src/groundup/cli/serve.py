"""`groundup serve`: the local web page, to train live and draw a digit.

The web stack (Starlette, uvicorn) is imported inside the handler, so that the
other commands never load it.
"""

from __future__ import annotations

import argparse
import errno
import secrets
import socket
import sys
from pathlib import Path

from groundup.cli import add_debug
from groundup.errors import UsageError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="open a local web page to train a model live and draw digits for it",
        description=(
            "Start a web server for a page where you train a model and watch it learn: the "
            "loss and accuracy curves, the weights as images, and the seven steps lit as "
            "they happen. Pause, step one batch, change the learning rate as it runs, draw a "
            "digit for the model to read, browse the training images and save the model as "
            "a run directory. It listens on this computer only (127.0.0.1) unless --host "
            "says otherwise. Stop it with Ctrl-C."
        ),
    )
    p.add_argument(
        "--data",
        default="sample",
        metavar="SRC",
        help="data source to train on: sample (bundled, default), mnist, fashion-mnist, "
        "kmnist, an IDX directory or an image folder",
    )
    p.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0 lets "
        "other devices on your network in, e.g. a tablet to draw on)",
    )
    p.add_argument(
        "--runs-dir",
        type=Path,
        default=Path("runs"),
        metavar="DIR",
        help="where the page saves run directories (default: runs)",
    )
    add_debug(p)
    p.set_defaults(handler=cmd_serve)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 1 and 65535, not {value}")
    return value


def check_port(host: str, port: int) -> None:
    """Raise a `UsageError` now if `host:port` cannot be listened on, rather than
    after uvicorn has started and printed its own traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} is already in use: try --port {port + 1}") from None
            raise UsageError(f"cannot listen on {host}:{port}: {err.strerror}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from groundup.web import create_app

    check_port(args.host, args.port)
    local = args.host in LOOPBACK
    # Off this computer, every request must carry a token, printed in the address below
    token = None if local else secrets.token_urlsafe(24)
    app = create_app(args.data, args.runs_dir, allowed_hosts=None if local else ["*"], token=token)
    job = app.state.job
    job.ensure_ready()  # load the data now: a bad --data fails here, in one line
    summary = job.summary()
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    if ":" in shown:
        shown = f"[{shown}]"
    print(
        f"groundup: {summary['source']}, digits {' '.join(map(str, summary['digits']))}: "
        f"{summary['train_size']} training and {summary['valid_size']} validation images"
    )
    url = f"http://{shown}:{args.port}/" + (f"?token={token}" if token else "")
    if not local:
        sys.stderr.write(
            f"groundup: warning: listening on {args.host}: other computers on your network "
            "can reach this server; only those given the address below, with its token, "
            "can open the page and control the training\n"
        )
    sys.stdout.flush()

    class Server(uvicorn.Server):
        async def startup(self, sockets: list | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # listening now: the address works the moment it is shown
                print(f"groundup: open {url} in a browser (Ctrl-C stops the server)", flush=True)

        def handle_exit(self, sig: int, frame: object) -> None:
            # End the pages' event streams first: uvicorn waits for open responses
            # to finish before it stops, and these never finish by themselves.
            job.hub.close()
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5
    )
    try:
        Server(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down cleanly
        pass
    print("groundup: server stopped")
    return 0
