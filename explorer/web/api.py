"""The JSON read API (``/api/v1``): one endpoint behind every page.

Ids are validated by :mod:`explorer.web.ids` before any query; paging
parameters are bounded. Every handler is a single ``Reader.read`` so a
request costs one trip to a database thread. Handlers return ``JSONResponse``
directly: the read model already produces JSON-ready values, and FastAPI's
generic response encoding was the slowest step of a job's JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from explorer import queries
from explorer.web import ids
from explorer.web.reader import NotFound, Reader

MAX_OFFSET = 1_000_000
MAX_HOURS = 24 * 30


async def overview_of(r: Reader) -> dict[str, Any]:
    now_ms = r.wall_ms()
    return await r.read(lambda tx: queries.overview(tx, now_ms, r.settings.read))


def api_router(r: Reader) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["read"])
    s = r.settings.read

    @router.get("/overview", summary="Network now: nodes, GPUs, capacity, jobs, frames, price")
    async def overview() -> JSONResponse:
        return JSONResponse(await r.shared("overview", lambda: overview_of(r)))

    @router.get("/overview/series", summary="Overview history, one point per stats interval")
    async def series(hours: int = Query(24, ge=1, le=MAX_HOURS)) -> JSONResponse:
        since_ms = r.wall_ms() - hours * queries.HOUR_MS
        return JSONResponse(await r.read(lambda tx: queries.series(tx, since_ms)))

    @router.get("/nodes", summary="Nodes, most recently seen first")
    async def nodes(offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> JSONResponse:
        now_ms = r.wall_ms()
        return JSONResponse(await r.read(lambda tx: queries.list_nodes(tx, now_ms, s, offset)))

    @router.get("/nodes/{node_id}", summary="One node: capacity, builds, reputation, earnings")
    async def node(node_id: str) -> JSONResponse:
        nid, now_ms = ids.node_id(node_id), r.wall_ms()
        return JSONResponse(
            await r.found(lambda tx: queries.node(tx, nid, now_ms, s), "node " + nid)
        )

    @router.get("/jobs", summary="Jobs, most recently announced first")
    async def jobs(offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> JSONResponse:
        return JSONResponse(await r.read(lambda tx: queries.list_jobs(tx, s, offset)))

    @router.get(
        "/jobs/{job_id}", summary="One job: frames, workers, verdicts, vouchers, transactions"
    )
    async def job(job_id: str, offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> JSONResponse:
        jid, now_ms = ids.hash32(job_id), r.wall_ms()
        return JSONResponse(
            await r.found(lambda tx: queries.job(tx, jid, now_ms, s, offset), "job " + jid)
        )

    @router.get("/checkers", summary="Checkers: verdicts issued, disputes against them")
    async def checkers() -> JSONResponse:
        return JSONResponse(await r.read(lambda tx: queries.checkers(tx, s)))

    @router.get("/tx/{tx_hash}", summary="Escrow events of one transaction")
    async def transaction(tx_hash: str) -> JSONResponse:
        h = ids.tx_hash(tx_hash)
        return JSONResponse(
            await r.found(lambda tx: queries.transaction(tx, h), "transaction " + h)
        )

    @router.get("/address/{address}", summary="An EVM address: its nodes, jobs, escrow events")
    async def address(address: str) -> JSONResponse:
        a = ids.address(address)
        return JSONResponse(await r.found(lambda tx: queries.address(tx, a, s), "address " + a))

    @router.get("/search", summary="Where a node id, job id, transaction hash or address is shown")
    async def search(q: str = Query(..., max_length=ids.MAX_QUERY_CHARS)) -> JSONResponse:
        kind, value = ids.classify(q)
        url = await r.read(lambda tx: queries.find(tx, kind, value))
        if url is None:
            raise NotFound(f"nothing in the index matches {value}")
        return JSONResponse({"kind": kind, "url": url})

    return router
