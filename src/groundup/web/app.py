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

What the server refuses before a route sees a request (another web site, a Host
that is not this server's, a missing token, a body over its limit or not JSON) is
in guard.py, with the JSON form of every error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
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

from groundup.errors import DataError, GroundupError, UsageError
from groundup.web.events import Subscriber, sse_message
from groundup.web.guard import (
    IMAGE_WORKERS,
    LOOPBACK_HOSTS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_JSON_BYTES,
    TOKEN_COOKIE,
    SameOriginOnly,
    SecurityHeaders,
    client_gone,
    groundup_error,
    http_error,
    read_json,
    server_error,
)
from groundup.web.jobs import JobConflict, TrainingJob

STATIC_DIR = Path(__file__).parent / "static"
# The page is ES modules, which a browser runs only when served as JavaScript; some
# systems' MIME tables still map .js elsewhere (application/x-javascript).
mimetypes.add_type("text/javascript", ".js")
KEEPALIVE_SECONDS = 10.0  # an SSE comment this often keeps proxies and browsers from timing out
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PNG_PREFIX = "data:image/png;base64,"


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
