"""HTML pages: the same reads as the JSON API, rendered with Jinja2.

Each page names its JSON twin (``live_url``) in the markup; ``static/live.js``
polls it and updates the elements marked ``data-live``, so numbers move
without a reload and the page works (statically) with JavaScript off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from explorer import queries
from explorer.web import ids
from explorer.web.api import overview_of
from explorer.web.reader import NotFound, Reader
from explorer.web.svg import line_chart

MAX_OFFSET = 1_000_000
CHART_TITLES = {
    "nodes_online": "Nodes online",
    "gpus_online": "GPUs online",
    "capacity_ru_per_hour": "Capacity (render units/hour)",
    "jobs_running": "Jobs running",
    "frames_per_hour": "Frames rendered per hour",
    "median_price_wei_per_ru": "Median price (wei per render unit)",
}


def charts_for(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {
        metric: line_chart(title, [(int(r["at_ms"]), float(r[metric])) for r in rows])
        for metric, title in CHART_TITLES.items()
    }


Page = Callable[..., HTMLResponse]


def pages_router(r: Reader, templates: Jinja2Templates) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def page(request: Request, name: str, live_url: str | None, **context: Any) -> HTMLResponse:
        context.update(live_url=live_url, live_ms=r.settings.live_poll_ms)
        return templates.TemplateResponse(request, name, context)

    _network_pages(router, r, page)
    _entity_pages(router, r, page)
    return router


def _network_pages(router: APIRouter, r: Reader, page: Page) -> None:
    """The overview, its charts, the lists, and search."""
    s = r.settings.read

    async def history() -> list[dict[str, Any]]:
        since_ms = r.wall_ms() - r.settings.chart_hours * queries.HOUR_MS
        return await r.read(lambda tx: queries.series(tx, since_ms))

    async def charts() -> dict[str, str]:
        return charts_for(await history())

    @router.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> HTMLResponse:
        data = await r.shared("overview", lambda: overview_of(r))
        return page(
            request,
            "overview.html",
            "/api/v1/overview",
            o=data,
            charts=await r.shared("charts", charts),
            titles=CHART_TITLES,
        )

    @router.get("/charts/{metric}.svg")
    async def chart(metric: str) -> Response:
        if metric not in CHART_TITLES:
            raise NotFound(f"no chart named {metric[:40]!r}")
        svg = (await r.shared("charts", charts))[metric]
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    @router.get("/nodes", response_class=HTMLResponse)
    async def nodes(request: Request, offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> HTMLResponse:
        now_ms = r.wall_ms()
        rows = await r.read(lambda tx: queries.list_nodes(tx, now_ms, s, offset))
        return page(request, "nodes.html", None, nodes=rows, offset=offset, page_rows=s.page_rows)

    @router.get("/jobs", response_class=HTMLResponse)
    async def jobs(request: Request, offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> HTMLResponse:
        rows = await r.read(lambda tx: queries.list_jobs(tx, s, offset))
        return page(request, "jobs.html", None, jobs=rows, offset=offset, page_rows=s.page_rows)

    @router.get("/checkers", response_class=HTMLResponse)
    async def checkers(request: Request) -> HTMLResponse:
        rows = await r.read(lambda tx: queries.checkers(tx, s))
        return page(request, "checkers.html", None, checkers=rows)

    @router.get("/search")
    async def search(q: str = Query("", max_length=ids.MAX_QUERY_CHARS)) -> RedirectResponse:
        kind, value = ids.classify(q)
        url = await r.read(lambda tx: queries.find(tx, kind, value))
        if url is None:
            raise NotFound(f"nothing in the index matches {value}")
        return RedirectResponse(url, status_code=303)


def _entity_pages(router: APIRouter, r: Reader, page: Page) -> None:
    """One node, job, transaction or address, by validated id."""
    s = r.settings.read

    @router.get("/nodes/{node_id}", response_class=HTMLResponse)
    async def node(request: Request, node_id: str) -> HTMLResponse:
        nid, now_ms = ids.node_id(node_id), r.wall_ms()
        data = await r.found(lambda tx: queries.node(tx, nid, now_ms, s), "node " + nid)
        return page(request, "node.html", f"/api/v1/nodes/{nid}", n=data)

    @router.get("/jobs/{job_id}", response_class=HTMLResponse)
    async def job(
        request: Request, job_id: str, offset: int = Query(0, ge=0, le=MAX_OFFSET)
    ) -> HTMLResponse:
        jid, now_ms = ids.hash32(job_id), r.wall_ms()
        data = await r.found(lambda tx: queries.job(tx, jid, now_ms, s, offset), "job " + jid)
        return page(request, "job.html", f"/api/v1/jobs/{jid}", j=data, page_rows=s.page_rows)

    @router.get("/tx/{tx_hash}", response_class=HTMLResponse)
    async def transaction(request: Request, tx_hash: str) -> HTMLResponse:
        h = ids.tx_hash(tx_hash)
        data = await r.found(lambda tx: queries.transaction(tx, h), "transaction " + h)
        return page(request, "tx.html", None, t=data)

    @router.get("/address/{address}", response_class=HTMLResponse)
    async def address(request: Request, address: str) -> HTMLResponse:
        a = ids.address(address)
        data = await r.found(lambda tx: queries.address(tx, a, s), "address " + a)
        return page(request, "address.html", None, a=data)
