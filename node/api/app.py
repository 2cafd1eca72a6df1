"""The node's local HTTP API: FastAPI, bearer token, JSON views of the node.

Bound to 127.0.0.1 only; every route except the OpenAPI document needs
``Authorization: Bearer <token>`` with the token from the 0600 file that
``pictor init`` wrote. The token is compared in constant time and never logged.
``node.api.guard`` checks it first, with the body's size and JSON depth,
before anything reads or parses the body; the route dependency checks again.
"""

from __future__ import annotations

import hmac
from typing import Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from node.api.guard import ApiGuard

API_VERSION = "1"
MAX_WAIT_S = 60.0


class NodeView(Protocol):
    """What the API reads from the node (the runtime implements it)."""

    async def status(self) -> dict[str, Any]: ...

    async def peers(self) -> list[dict[str, Any]]: ...

    def network_capacity(self) -> list[dict[str, Any]]: ...

    async def wait_capacity(self, min_peers: int, wait_s: float) -> None: ...

    async def rows(self, table: str) -> list[dict[str, Any]]: ...

    async def metrics_text(self) -> bytes: ...


class _BearerAuth:
    """Dependency checking the bearer token (a class: closures confuse FastAPI's
    resolution of postponed annotations)."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._bearer = HTTPBearer(auto_error=False)

    async def __call__(self, request: Request) -> None:
        credentials = await self._bearer(request)
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, self._token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or bad API token: send 'Authorization: Bearer <token>' "
                "with the token from the node's api.token file",
                headers={"WWW-Authenticate": "Bearer"},
            )


def create_app(view: NodeView, token: str) -> FastAPI:
    app = FastAPI(
        title="Pictor node API",
        version=API_VERSION,
        description="Local control and observation API of one Pictor node (127.0.0.1 only).",
        # FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from a CDN: off, the
        # schema stays at /openapi.json (nothing a node serves comes from elsewhere).
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(ApiGuard, token=token)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    auth = [Depends(_BearerAuth(token))]

    @app.get("/v1/status", dependencies=auth, summary="Node identity, roles, addresses, uptime")
    async def get_status() -> dict[str, Any]:
        return await view.status()

    @app.get("/v1/peers", dependencies=auth, summary="Known and connected peers with scores")
    async def get_peers() -> list[dict[str, Any]]:
        return await view.peers()

    @app.get("/v1/network", dependencies=auth, summary="Network capacity from CapacityAdverts")
    async def get_network(
        min_peers: int = Query(0, ge=0, description="Long-poll: wait for this many adverts"),
        wait_s: float = Query(0.0, ge=0, le=MAX_WAIT_S, description="...for at most this long"),
    ) -> list[dict[str, Any]]:
        if min_peers:
            await view.wait_capacity(min_peers, wait_s)
        return view.network_capacity()

    for table in ("jobs", "tasks", "results"):
        app.add_api_route(
            f"/v1/{table}",
            _rows_route(view, table),
            methods=["GET"],
            dependencies=auth,
            summary=f"{table.capitalize()} in the node's store",
        )

    @app.get("/metrics", dependencies=auth, summary="Prometheus metrics")
    async def get_metrics(request: Request) -> Response:
        return Response(await view.metrics_text(), media_type="text/plain; version=0.0.4")

    return app


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """422 naming each refused field; FastAPI's own handler echoes the input back
    and fails with a 500 when that input is NaN or Infinity."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


def _rows_route(view: NodeView, table: str) -> Any:
    async def route() -> list[dict[str, Any]]:
        return await view.rows(table)

    route.__name__ = f"get_{table}"
    return route
