"""The API's front door: token, body size and JSON depth, checked before parsing.

FastAPI checks the token in a dependency, which runs *after* it has read and
parsed the request body; hypercorn sets no body limit. So a caller without
the token could make the node buffer any body (two 200 MB bodies left +200 MB
RSS), and a ~100,000-deep JSON body segfaulted the process (importing the
chain libraries raises the recursion limit to 100,000, past the C stack).
This pure ASGI middleware runs first, in this order, each step cheap:

1. the bearer token (constant-time compare) unless the path is public (the
   OpenAPI document and its viewers) — 401 without reading the body;
2. a declared ``Content-Length`` over ``max_body_bytes`` — 413 unread;
3. the body read in chunks, stopped at ``max_body_bytes`` — 413;
4. the nesting depth of ``[``/``{`` outside JSON strings over
   ``max_json_depth`` — 400, before any parser sees it.

The body is then replayed to the app unchanged.

Two exceptions, both named here. The dashboard's page and its script and
style (``node.ui``) are public: a browser cannot send a header when it opens
a link; they hold no secret, and everything they fetch needs the token. An
upload path in ``streamed`` (a .blend for the dashboard) is not buffered: its
``Content-Length`` must be declared and within the path's own limit (411,
413), and the app reads it as a stream that ends with ``BodyOverLimit``
should more arrive than that. Requests that change something (not GET/HEAD)
whose ``Origin`` is another site than the ``Host`` they were sent to get 403,
and so does any request whose ``Host`` is not a loopback name (a web page
whose DNS name was rebound to 127.0.0.1): the token rides in a header no
other site can set, and these are two more fences (CSRF, DNS rebinding).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1 << 20
MAX_JSON_DEPTH = 32
UI_PATHS = frozenset({"/ui", "/ui/", "/ui/app.js", "/ui/app.css"})  # node.ui: no secrets
PUBLIC_PATHS = frozenset({"/openapi.json"}) | UI_PATHS  # /docs and /redoc are off (CDN)
SCENE_UPLOAD_PATH = "/v1/ui/scenes"
MAX_SCENE_BYTES = 2 << 30  # a .blend with packed textures; streamed to disk, never buffered
STREAMED = {SCENE_UPLOAD_PATH: MAX_SCENE_BYTES}
SAFE_METHODS = frozenset({"GET", "HEAD"})
LOOPBACK_NAMES = frozenset({b"127.0.0.1", b"localhost", b"[::1]"})
_TOKENS = re.compile(rb'[\[\]{}"\\]')
UNAUTHORIZED = (
    "missing or bad API token: send 'Authorization: Bearer <token>' "
    "with the token from the node's api.token file"
)


class BodyTooDeep(ValueError):
    pass


class BodyOverLimit(ValueError):
    """A streamed body sent more bytes than it declared (the app stops reading)."""


def json_depth(body: bytes, limit: int) -> int:
    """Deepest ``[``/``{`` nesting outside strings; raises ``BodyTooDeep`` past ``limit``.

    Returns 0 without scanning when the body has too few brackets to exceed it.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return 0  # cannot be deeper than the limit: skip the scan
    depth = deepest = 0
    in_string, skip_at = False, -1
    for match in _TOKENS.finditer(body):
        char = match.group()
        if in_string:
            if match.start() == skip_at:
                continue  # the character after a backslash is escaped
            if char == b"\\":
                skip_at = match.end()
            elif char == b'"':
                in_string = False
            continue
        if char == b'"':
            in_string = True
        elif char in b"[{":
            depth += 1
            if depth > limit:
                raise BodyTooDeep(f"JSON nested deeper than {limit} levels")
            deepest = max(deepest, depth)
        elif char in b"]}":
            depth -= 1
    return deepest


class ApiGuard:
    def __init__(
        self,
        app: ASGIApp,
        token: str,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_json_depth: int = MAX_JSON_DEPTH,
        streamed: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self._token = token.encode()
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self.streamed = STREAMED if streamed is None else streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if not _loopback_host(headers):
            await _reply(send, 403, "address the node as 127.0.0.1 or localhost (the API is local)")
            return
        if scope.get("path") not in PUBLIC_PATHS and not self._authorized(headers):
            await _reply(send, 401, UNAUTHORIZED, ((b"www-authenticate", b"Bearer"),))
            return
        if scope.get("method") not in SAFE_METHODS and not _same_origin(headers):
            await _reply(send, 403, "cross-site request refused (Origin is not this node's API)")
            return
        limit = self.streamed.get(scope.get("path", ""))
        if limit is not None:
            await self._stream(scope, receive, send, headers, limit)
            return
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_body_bytes:
            await _reply(send, 413, f"request body over {self.max_body_bytes} bytes")
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _reply(send, 413, f"request body over {self.max_body_bytes} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            json_depth(body, self.max_json_depth)
        except BodyTooDeep as exc:
            await _reply(send, 400, str(exc))
            return
        await self.app(scope, _replay(body, receive), send)

    async def _stream(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], limit: int
    ) -> None:
        declared = headers.get(b"content-length")
        if declared is None or not declared.isdigit():
            await _reply(send, 411, "send the upload with a Content-Length")
            return
        if int(declared) > limit:
            await _reply(send, 413, f"upload over {limit} bytes")
            return
        read = _Read()
        await self.app(scope, _counted(receive, int(declared), read), _close_if_unread(send, read))

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token)


def _loopback_host(headers: dict[bytes, bytes]) -> bool:
    """No ``Host``, or one naming this machine: a page whose DNS name was rebound to
    127.0.0.1 sends its own name and is refused."""
    host = headers.get(b"host")
    if host is None:
        return True
    name = (
        host[: host.index(b"]") + 1]
        if host.startswith(b"[") and b"]" in host
        else host.split(b":")[0]
    )
    return name.lower() in LOOPBACK_NAMES


def _same_origin(headers: dict[bytes, bytes]) -> bool:
    """No ``Origin`` (not a browser's cross-site request) or one naming the ``Host``."""
    origin = headers.get(b"origin")
    if origin is None:
        return True
    _, _, netloc = origin.partition(b"://")
    return netloc != b"" and netloc == headers.get(b"host")


class _Read:
    """Whether a streamed request's body was read to its end."""

    done = False


def _counted(receive: Receive, limit: int, read: _Read) -> Receive:
    """``receive`` that raises ``BodyOverLimit`` once more than ``limit`` bytes came."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyOverLimit(f"upload over {limit} bytes")
            read.done = not message.get("more_body", False)
        return message

    return counted


def _close_if_unread(send: Send, read: _Read) -> Send:
    """``send`` that says ``Connection: close`` on a response started before the body was
    read to its end (the app refused an upload part way: as ``_reply``)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and not read.done:
            headers = [*message.get("headers", []), (b"connection", b"close")]
            message = {**message, "headers": headers}
        await send(message)

    return sending


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reply(
    send: Send, status: int, detail: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """A refusal; it closes the connection, since the request's body may be left
    unread: hypercorn then drops the connection, and a client told nothing would
    send its next request on it and see it dropped unanswered."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers + list(extra)})
    await send({"type": "http.response.body", "body": body})
