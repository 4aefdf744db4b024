"""The web page's server: a Starlette app around one `TrainingJob`.

    GET  /                          the page (static/index.html)
    GET  /static/...                its script and style (no path leads out of the folder)
    GET  /api/settings?digits=all&model=net   the form's schema (choices, ranges, help)
                                    and every setting resolved for those choices
    GET  /api/state                 the run now: state, settings, history, weight pictures
    GET  /api/events                the same, live: Server-Sent Events (see jobs.py)
    POST /api/train/start           {settings}: a new run; 409 while one runs or is paused
    POST /api/train/pause | resume | stop
    POST /api/train/step | reset    optionally {settings}: a ready run set up from them
    POST /api/train/lr              {"lr": 0.5}: a new learning rate, at once
    POST /api/train/speed           {"delay": 0.1}: seconds to wait after each batch
    POST /api/predict               {"image": "data:image/png;base64,..."}: a drawing
    GET  /api/data?split=train&offset=0&limit=48     thumbnails and predictions, mixed
    GET  /api/data/{index}?split=train               one image's pixels and prediction
    POST /api/save                  {"name": "my-run"}: the model as a run directory

Every answer from /api is JSON; an error is `{"error": "one line for a learner"}`
with its status: 400 bad JSON or settings, 403 a request from another web site,
404 unknown route, 409 a conflict with the run's state, 413 a body or a drawing
over its limit, 415 a POST that is not sent as JSON (even an empty one), 500 a bug.
Requests never wait for training: it runs in its own thread, and requests read
a copy of the weights taken after each batch.

No other web site may drive the server (docs/security.md): the Host header must
name this server (DNS rebinding), and a POST must come from the page's own origin
(its `Origin` and `Sec-Fetch-Site` headers, as Jupyter checks them) and be JSON,
which a form on another site cannot send.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import mimetypes
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from groundup.errors import DataError, GroundupError, UsageError
from groundup.web.events import Subscriber, sse_message
from groundup.web.jobs import JobConflict, TrainingJob

STATIC_DIR = Path(__file__).parent / "static"
# The page is ES modules, which a browser runs only when served as JavaScript; some
# systems' MIME tables still map .js elsewhere (application/x-javascript).
mimetypes.add_type("text/javascript", ".js")
MAX_IMAGE_BYTES = 256 * 1024  # a drawn digit is a few KB; refuse anything far larger
MAX_JSON_BYTES = 16 * 1024  # settings and names
MAX_IMAGE_PIXELS = 2048 * 2048  # a small PNG may still decode to a huge image
# Drawings prepared at once; others wait their turn. One 2048x2048 drawing takes about
# 60 MB while it is prepared, so the image work stays within IMAGE_WORKERS x 60 MB
# however many arrive together (docs/security.md).
IMAGE_WORKERS = 2
# Fetch metadata a browser sends: only the page's own requests, or one the user typed.
ALLOWED_FETCH_SITES = ("same-origin", "none")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
TOKEN_COOKIE = "groundup_token"
log = logging.getLogger("groundup.web")
KEEPALIVE_SECONDS = 10.0  # an SSE comment this often keeps proxies and browsers from timing out
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PNG_PREFIX = "data:image/png;base64,"
# The page loads nothing from elsewhere; the browser is told to refuse it if it tried.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'",
    ),
]


def create_app(
    data: str = "sample",
    runs_dir: str | Path = "runs",
    *,
    allowed_hosts: Sequence[str] | None = None,
    phase_pause: float = 0.25,
    token: str | None = None,
) -> Starlette:
    """The app for `groundup serve`: the page, its API, and one training job.

    data: the source every run trains on (`sample`, `mnist`, a folder, ...).
    runs_dir: where `POST /api/save` writes run directories.
    allowed_hosts: Host headers to answer (default: the loopback names only, which
    stops other web sites from reaching the server through DNS rebinding).
    phase_pause: seconds each step stays lit when one batch is stepped.
    token: when given, every request must carry it (`groundup serve --host 0.0.0.0`
    prints the address with it): the page's address `/?token=...` sets a cookie that
    the page's own requests then carry; a script may send `Authorization: Token ...`.
    """
    job = TrainingJob(data, phase_pause=phase_pause)
    runs = Path(runs_dir)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(job.shutdown)

    routes = [
        Route("/", index),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/api/settings", settings),
        Route("/api/state", state),
        Route("/api/events", events),
        Route("/api/train/{action}", train_action, methods=["POST"]),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/data", browse),
        Route("/api/data/{index:int}", image_detail),
        Route("/api/save", save, methods=["POST"]),
    ]
    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(SameOriginOnly, allowed_hosts=hosts, token=token),
        ],
        exception_handlers={
            HTTPException: http_error,
            GroundupError: groundup_error,
            ClientDisconnect: client_gone,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    app.state.job = job
    app.state.runs_dir = runs
    app.state.image_work = asyncio.Semaphore(IMAGE_WORKERS)
    return app


class SameOriginOnly:
    """Refuses, with a JSON error, what did not come from this server's own page:

    - a Host header not in `allowed_hosts` (400): a rebound DNS name of another site;
    - a POST (any method but GET, HEAD, OPTIONS) whose `Origin` is another origin
      than the one the Host header names, or `null` (403);
    - a POST whose `Sec-Fetch-Site` is `cross-site` or `same-site` (403): a page on
      another port of 127.0.0.1 is "same-site", and must not drive the server either.

    Requests without these headers (curl, scripts on this computer) pass: they are not
    a browser carrying the user's access to another site's page.

    With a `token`, each request must also carry it: in the cookie the page's address
    (`/?token=...`) sets, in an `Authorization: Token ...` header, or in `?token=`.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str], token: str | None) -> None:
        self.app = app
        self.hosts = list(allowed_hosts)
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if "*" not in self.hosts and name not in self.hosts:
            await _refuse(scope, receive, send, 400, "this server answers to 127.0.0.1 only")
            return
        if self.token is not None and not self._has_token(scope, headers):
            await _refuse(
                scope, receive, send, 403,
                "this server needs its token: open the address it printed when it started",
            )  # fmt: skip
            return
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            own = f"{scope.get('scheme', 'http')}://{host}"
            if origin is not None and origin != own:
                await _refuse(
                    scope, receive, send, 403, f"requests from {origin} are refused: "
                    "only this server's own page may change the training"
                )  # fmt: skip
                return
            site = headers.get("sec-fetch-site")
            if site is not None and site not in ALLOWED_FETCH_SITES:
                await _refuse(
                    scope, receive, send, 403,
                    f"a {site} request is refused: only this server's own page may change "
                    "the training",
                )  # fmt: skip
                return
        await self.app(scope, receive, send)

    def _has_token(self, scope: Scope, headers: dict[str, str]) -> bool:
        import hmac
        from http.cookies import SimpleCookie
        from urllib.parse import parse_qs

        assert self.token is not None
        offered = []
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no token
            pass
        if TOKEN_COOKIE in cookie:
            offered.append(cookie[TOKEN_COOKIE].value)
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "token":
            offered.append(value.strip())
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        offered += query.get("token", [])
        # compare_digest: the time taken says nothing about how much of a guess was right
        return any(hmac.compare_digest(o.encode(), self.token.encode()) for o in offered)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    response = JSONResponse({"error": message}, status_code=status)
    await response(scope, receive, send)


class SecurityHeaders:
    """Adds `SECURITY_HEADERS` to every response (plain ASGI, so streams pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- errors --------------------------------------------------------------------------------


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: f"no such page: {request.url.path}", 405: "that method is not allowed here"}
    detail = exc.detail if exc.detail and exc.detail not in _DEFAULT_DETAILS else None
    message = detail or messages.get(exc.status_code, "the request failed")
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


_DEFAULT_DETAILS = {"Not Found", "Method Not Allowed"}


async def groundup_error(request: Request, exc: Exception) -> Response:
    """A learner's mistake, or a request out of turn: one line and a status."""
    status = 409 if isinstance(exc, JobConflict) else 400
    if not isinstance(exc, (UsageError, DataError)):
        status = 500
    return JSONResponse({"error": str(exc)}, status_code=status)


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client went away before sending its whole request: one line in the log."""
    log.warning("%s %s: the client disconnected before sending its whole request",
                request.method, request.url.path)  # fmt: skip
    return Response(status_code=400)  # nobody will read it


async def server_error(request: Request, exc: Exception) -> Response:
    """A bug: still a JSON answer (the traceback goes to the server's log)."""
    return JSONResponse({"error": "the server failed; see its log"}, status_code=500)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, or an HTTPException: 415 not sent as JSON (even
    an empty body: a form on another site can send an empty text/plain POST), 413 over
    `limit` bytes, 400 not a JSON object. An empty JSON body is `{}`."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        # Only JSON: a form on another web site cannot send it to us without asking first.
        raise HTTPException(415, "send the body as JSON, with Content-Type: application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the request is over {limit // 1024} KB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:  # a body without (or lying about) its length
            raise HTTPException(413, f"the request is over {limit // 1024} KB")
    if not body:
        return {}
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise HTTPException(400, f"the body is not valid JSON: {err}") from None
    except RecursionError:  # [[[[...]]]] thousands deep
        raise HTTPException(400, "the body's JSON is nested too deeply") from None
    if not isinstance(value, dict):
        raise HTTPException(400, 'the body must be a JSON object, like {"lr": 0.5}')
    return value


def _job(request: Request) -> TrainingJob:
    return request.app.state.job


# -- the page and the run ------------------------------------------------------------------


async def index(request: Request) -> Response:
    response = FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
    token = request.query_params.get("token")
    if token:  # checked by SameOriginOnly: the page's own requests carry it from now on
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response


async def settings(request: Request) -> Response:
    """The form's choices, ranges and help, and the defaults the query's choices resolve
    to: the page copies none of them (see jobs.settings_schema)."""
    params = dict(request.query_params)
    return JSONResponse(await run_in_threadpool(_job(request).settings, params))


async def state(request: Request) -> Response:
    job = _job(request)
    await run_in_threadpool(job.ensure_ready)
    return JSONResponse(await run_in_threadpool(job.snapshot))


async def events(request: Request) -> Response:
    """Every event of the job, as it happens, to this page (Server-Sent Events)."""
    job = _job(request)
    await run_in_threadpool(job.ensure_ready)
    sub = job.hub.subscribe()  # before the snapshot, so that nothing falls in between

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n"  # if the connection drops, the browser retries in 2 s
            yield sse_message(await run_in_threadpool(job.snapshot))
            while True:
                try:
                    message = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_SECONDS)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if message == Subscriber.CLOSED:
                    return
                if message == Subscriber.RESYNC:
                    message = sse_message(await run_in_threadpool(job.snapshot))
                yield message
        finally:
            job.hub.unsubscribe(sub)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


async def train_action(request: Request) -> Response:
    job = _job(request)
    action = request.path_params["action"]
    body = await read_json(request, MAX_JSON_BYTES)
    if action == "start":
        return JSONResponse(await run_in_threadpool(job.start, body))
    if action == "lr":
        if "lr" not in body:
            raise UsageError('send the new learning rate as {"lr": 0.5}')
        return JSONResponse(await run_in_threadpool(job.set_lr, body["lr"]))
    if action == "speed":
        if "delay" not in body:
            raise UsageError('send the wait between batches as {"delay": 0.1} (seconds)')
        return JSONResponse(await run_in_threadpool(job.set_delay, body["delay"]))
    await run_in_threadpool(job.ensure_ready)
    if action in ("step", "reset"):  # optionally with the page's choices
        method = job.step if action == "step" else job.reset
        return JSONResponse(await run_in_threadpool(method, body or None))
    simple = {"pause": job.pause, "resume": job.resume, "stop": job.stop}
    if action not in simple:
        raise HTTPException(404, f"no such training action: {action}")
    return JSONResponse(await run_in_threadpool(simple[action]))


# -- drawing -------------------------------------------------------------------------------


async def predict(request: Request) -> Response:
    """A drawing (a PNG data URI), prepared as MNIST's digits were, then predicted."""
    body = await read_json(request, MAX_IMAGE_BYTES)
    image = body.get("image")
    if not isinstance(image, str) or not image.startswith(PNG_PREFIX):
        raise UsageError('send the drawing as {"image": "data:image/png;base64,..."}')
    try:
        png = base64.b64decode(image[len(PNG_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise UsageError("the drawing's base64 data is damaged") from None
    async with request.app.state.image_work:  # at most IMAGE_WORKERS drawings at once
        return JSONResponse(await run_in_threadpool(_predict_drawing, _job(request), png))


def _predict_drawing(job: TrainingJob, png: bytes) -> dict[str, Any]:
    import torch

    from groundup.data.images import TooManyPixels, open_image, prepare_digit

    try:
        img = open_image(png, max_pixels=MAX_IMAGE_PIXELS, formats=("PNG",), name="the drawing")
    except TooManyPixels as err:
        raise HTTPException(413, str(err)) from None
    except DataError:
        raise DataError("the drawing is not a PNG image that can be read") from None
    pixels = prepare_digit(img)  # (28, 28) float32 in [0, 1], centred as MNIST's
    x = torch.from_numpy(pixels).reshape(1, 784)  # (1, 784)
    return {"input": _rounded(pixels, 3), **_explain(job, x[0])}


def _explain(job: TrainingJob, x: Any) -> dict[str, Any]:
    """The prediction for one image x (784,), and for the linear model what each
    pixel added to the score (weight × pixel)."""
    from groundup.web.live import contributions

    run = job.run()  # the weights after the last finished batch, as `groundup predict` reads
    digits = run.digits
    p = run.predict_proba(x.reshape(1, 784))[0]  # (C,)
    best = int(p.argmax())
    # For a pair the one score says "first digit" when high; otherwise explain the winner.
    column = 0 if len(digits) == 2 else best
    result: dict[str, Any] = {
        "digits": list(digits),
        "probs": [round(float(v), 4) for v in p],
        "prediction": digits[best],
        "contribution": None,
    }
    parts = contributions(run, x, column)
    if parts is not None:
        contrib, bias = parts
        result.update(
            contribution=_rounded(contrib.reshape(28, 28), 4),
            bias=round(bias, 4),
            score=round(float(contrib.sum()) + bias, 4),
            towards=digits[column],
        )
    summary = job.summary()
    result.update(state=summary["state"], epoch=summary["epoch"])
    return result


def _rounded(arr: Any, digits: int) -> list[list[float]]:
    return [[round(float(v), digits) for v in row] for row in arr]


# -- the data browser ----------------------------------------------------------------------


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name} must be a whole number, not {text!r}") from None
    if not low <= value <= high:
        raise UsageError(f"{name} must be between {low} and {high}, not {value}")
    return value


async def browse(request: Request) -> Response:
    split = request.query_params.get("split", "train")
    offset = _query_int(request, "offset", 0, 0, 10_000_000)
    limit = _query_int(request, "limit", 48, 1, 200)
    return JSONResponse(await run_in_threadpool(_browse, _job(request), split, offset, limit))


def _browse(job: TrainingJob, split: str, offset: int, limit: int) -> dict[str, Any]:
    from groundup.web.pictures import gray_png

    ds = job.dataset(split)
    indices = job.display_order(split)[offset : offset + limit]  # (n,) dataset rows
    x = ds.x[indices]  # (n, 784)
    labels = [ds.classes[int(i)] for i in ds.class_index()[indices]]
    items = []
    if len(x):
        run = job.run()
        probs, digits = run.predict_proba(x), run.digits  # (n, C)
        for index, row, label, p in zip(indices.tolist(), x, labels, probs, strict=True):
            items.append(
                {
                    "index": index,
                    "label": label,
                    "predicted": digits[int(p.argmax())],
                    "src": gray_png(row.reshape(28, 28).numpy()),
                }
            )
    return {"split": split, "total": len(ds), "offset": offset, "limit": limit, "items": items}


async def image_detail(request: Request) -> Response:
    split = request.query_params.get("split", "train")
    index = request.path_params["index"]
    return JSONResponse(await run_in_threadpool(_image_detail, _job(request), split, index))


def _image_detail(job: TrainingJob, split: str, index: int) -> dict[str, Any]:
    ds = job.dataset(split)
    if not 0 <= index < len(ds):
        raise HTTPException(404, f"no image {index} in the {split} split (it has {len(ds)})")
    x = ds.x[index]  # (784,)
    label = ds.classes[int(ds.class_index()[index])]
    pixels = (x * 255).round().int().reshape(28, 28).tolist()  # the stored bytes, 0..255
    return {"split": split, "index": index, "label": label, "pixels": pixels, **_explain(job, x)}


# -- saving --------------------------------------------------------------------------------


async def save(request: Request) -> Response:
    body = await read_json(request, MAX_JSON_BYTES)
    name = body.get("name")
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or ".." in name:
        raise UsageError(
            "a run name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        )
    run_dir = request.app.state.runs_dir / name
    if run_dir.exists():
        raise JobConflict(f"{run_dir} already exists: choose another name")
    info = await run_in_threadpool(_job(request).save, run_dir)
    where = str(run_dir.resolve())
    return JSONResponse(
        {
            "path": where,
            **info,
            "commands": [
                f"groundup predict {where} my-digit.png",
                f"groundup evaluate {where}",
                f"groundup report {where}",
            ],
        }
    )
