"""What the server refuses, in one place: the checks every request passes before a route
sees it, the limits on what a request may carry, and the JSON form of every error.

No other web site may drive the server (docs/security.md): the Host header must
name this server (DNS rebinding), and a POST must come from the page's own origin
(its `Origin` and `Sec-Fetch-Site` headers, as Jupyter checks them) and be JSON,
which a form on another site cannot send.

    SameOriginOnly       middleware: the Host, the token, Origin and Sec-Fetch-Site
    SecurityHeaders      middleware: no sniffing, no referrer, nothing loaded from elsewhere
    read_json            a POST's body: sent as JSON, within its limit, an object
    http_error, ...      every error as `{"error": "one line"}` with its status
    MAX_..., IMAGE_WORKERS   what a body and a drawing may weigh, and drawings at once
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from groundup.errors import DataError, UsageError
from groundup.web.jobs import JobConflict

log = logging.getLogger("groundup.web")
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
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
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


# -- who may ask ---------------------------------------------------------------------------


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


# -- the body ------------------------------------------------------------------------------


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
