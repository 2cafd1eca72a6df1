"""The explorer's FastAPI app: an app factory, no module-level state.

``create_app`` wires a :class:`Reader` (the index, read settings and a wall
clock) into two routers — the JSON read API under ``/api/v1`` (documented by
``/openapi.json``; no ``/docs``: Swagger UI would load from a CDN) and the HTML pages that show the same data —
plus static files. There are no write endpoints: the index is written only
by the indexer.

Errors are part of the interface: a malformed id is a 400, an unknown one a
404, both as an HTML page for browsers and as JSON under ``/api``. Handlers
turn our two exceptions into those answers, so a route never has to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from explorer.indexer.db import IndexDb
from explorer.web import filters
from explorer.web.api import api_router
from explorer.web.ids import BadId
from explorer.web.pages import pages_router
from explorer.web.reader import NotFound, Reader, WebSettings

HERE = Path(__file__).parent
API_VERSION = "1"


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _install_error_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    def answer(request: Request, status: int, title: str, detail: str) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": title, "detail": detail}, status_code=status)
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": status, "title": title, "detail": detail},
            status_code=status,
        )

    async def bad_id(request: Request, exc: Exception) -> Response:
        return answer(request, 400, "Bad request", str(exc))

    async def not_found(request: Request, exc: Exception) -> Response:
        return answer(request, 404, "Not found", str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        title = "Not found" if exc.status_code == 404 else "Request refused"
        return answer(request, exc.status_code, title, str(exc.detail))

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return answer(request, 400, "Bad request", where[:300])

    app.add_exception_handler(BadId, bad_id)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)


def create_app(db: IndexDb, settings: WebSettings, wall_ms: Callable[[], int]) -> FastAPI:
    app = FastAPI(
        title="Pictor explorer",
        version=API_VERSION,
        description="Read-only API over the explorer's index of Pictor gossip and escrow events.",
        # FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from a CDN; the explorer
        # serves nothing from elsewhere, so they are off: /openapi.json is the API document.
        docs_url=None,
        redoc_url=None,
    )
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    filters.install(templates.env)
    reader = Reader(db, settings, wall_ms)
    app.include_router(api_router(reader))
    app.include_router(pages_router(reader, templates))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    _install_error_handlers(app, templates)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> HTMLResponse:
        return HTMLResponse("", status_code=204)

    return app
