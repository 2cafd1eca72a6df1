"""The node's own web dashboard, served on the local API port (``pictor ui``).

Theory of operation. ``/ui/`` is one static page (``node/ui/static``: plain
HTML, CSS and JavaScript from the package, nothing from elsewhere) with four
views: Cloud (the node and the network), Render (drop a .blend, see the
estimate, submit, watch frames arrive, cancel, download), Worker (the frame
being rendered, earnings, GPUs) and Checker (verdicts and fees). The page
holds no secret, so it is public (``node.api.guard.UI_PATHS``); everything it
fetches needs the API token in the ``Authorization`` header.

Login: ``pictor ui`` prints ``/ui/#token=…``. A URL fragment never leaves
the browser (not in a request line, not in a log, not in a Referer); the
page moves it to ``sessionStorage``, erases it from the address bar and sends
it as a bearer header. No cookie exists, so another site cannot make the
browser act with it (CSRF), and the guard refuses cross-site ``Origin``s.

Live: ``/v1/ui/events`` is a Server-Sent Events stream of
``node.ui.snapshot`` documents, sent when one changed. The page reads it with
``fetch`` (``EventSource`` cannot send a header). Streams are bounded: at most
``max_streams`` at once (429 past that) and each ends after
``stream_max_s`` (the page reconnects), so no caller holds the node forever.
"""

from __future__ import annotations

import json
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import trio
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from pydantic import Field
from starlette.background import BackgroundTask

from node.api.app import _BearerAuth
from node.api.guard import MAX_SCENE_BYTES, SCENE_UPLOAD_PATH, BodyOverLimit
from node.api.jobs_routes import SceneRequest, find_job
from node.cli.job_market import checkers, offers
from node.roles.service import Roles
from node.roles.submit import SubmitError, preflight
from node.ui.snapshot import Snapshots, UiLimits, money
from node.ui.uploads import UploadDir, UploadRefused
from protocol.market.quote import DEFAULT_CHECKER_FEE_BPS, propose_max_price
from protocol.messages import MAX_FRAMES_PER_JOB, RenderSettings

KEEPALIVE_S = 15.0
STALE_ZIP_S = 3600.0
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")  # fmt: skip
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC = {"/ui/": ("index.html", "text/html; charset=utf-8"),
          "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/ui/app.css": ("app.css", "text/css; charset=utf-8")}  # fmt: skip


class QuoteRequest(SceneRequest):
    frames: int = Field(1, ge=1, le=MAX_FRAMES_PER_JOB, description="How many frames")


class StreamSlots:
    """Counts open event streams; ``try_take`` refuses past the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def try_take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open -= 1


class EventStream(StreamingResponse):
    """A streaming response that gives its slot back however it ends (a closed tab
    cancels the send; a ``finally`` in the generator would wait for the GC)."""

    def __init__(self, body: AsyncIterator[str], slots: StreamSlots) -> None:
        super().__init__(body, media_type="text/event-stream",
                         headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip
        self._slots = slots

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.give_back()


def static_file(name: str) -> bytes:
    return (resources.files("node.ui") / "static" / name).read_bytes()


def add_ui_routes(
    app: FastAPI, roles: Roles, token: str, limits: UiLimits | None = None,
    max_scene_bytes: int = MAX_SCENE_BYTES,
) -> Snapshots:  # fmt: skip
    limits = limits or UiLimits()
    auth = [Depends(_BearerAuth(token))]
    snapshots = Snapshots(roles, limits)
    slots = StreamSlots(limits.max_streams)
    ui_dir = roles.ctx.node.config.data_dir / "ui"
    uploads = UploadDir(ui_dir / "scenes", max_scene_bytes, limits.keep_uploads)
    pages = {path: (static_file(name), kind) for path, (name, kind) in STATIC.items()}

    @app.get("/ui", include_in_schema=False)
    async def ui_root() -> Response:
        return RedirectResponse("/ui/")

    for path, (body, kind) in pages.items():
        app.add_api_route(path, _page(body, kind), methods=["GET"], include_in_schema=False)

    @app.get("/v1/ui/state", dependencies=auth, summary="The dashboard's document, once")
    async def state() -> dict[str, Any]:
        return await snapshots.get()

    @app.get("/v1/ui/events", dependencies=auth,
             summary="The dashboard's document as Server-Sent Events, on each change")  # fmt: skip
    async def events() -> Response:
        if not slots.try_take():
            raise HTTPException(429, f"{limits.max_streams} dashboard streams are open already")
        return EventStream(_events(snapshots, limits), slots)

    _scene_routes(app, auth, roles, snapshots, ui_dir, uploads, limits.keep_uploads)
    _frame_routes(app, auth, roles, ui_dir)
    return snapshots


def _scene_routes(
    app: FastAPI, auth: list[Any], roles: Roles, snapshots: Snapshots, ui_dir: Path,
    uploads: UploadDir, keep: int,
) -> None:  # fmt: skip
    """Upload a scene, then price it (the Render view's first two steps)."""
    inspected: dict[tuple[Any, ...], tuple[RenderSettings, int]] = {}  # newest last, bounded

    @app.post(SCENE_UPLOAD_PATH, dependencies=auth,
              summary="Upload a .blend (raw body, streamed to disk; the dashboard's drop zone)")  # fmt: skip
    async def upload_scene(
        request: Request, name: str = Query("scene.blend", max_length=255)
    ) -> dict[str, Any]:
        try:
            saved = await uploads.save(name, request.stream())
        except UploadRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        except BodyOverLimit as exc:
            raise HTTPException(413, str(exc)) from None
        stem = Path(saved.name).stem[:40] or "scene"
        out_dir = ui_dir / "renders" / f"{stem}-{saved.sha256[:8]}"
        return {"scene": str(saved.path), "name": saved.name, "size_bytes": saved.size_bytes,
                "sha256": saved.sha256, "out_dir": str(out_dir)}  # fmt: skip

    @app.post("/v1/ui/quote", dependencies=auth,
              summary="A scene's render units, pinned settings and a proposed max price")  # fmt: skip
    async def quote(body: QuoteRequest) -> dict[str, Any]:
        if not Path(body.scene).is_file():
            raise HTTPException(422, f"scene {body.scene} not found")
        scene = Path(body.scene)
        key = (str(scene), scene.stat().st_mtime_ns, body.resolution, body.samples)
        if key not in inspected:  # a Blender process: seconds; the frame count does not matter
            try:
                inspected[key] = await preflight(roles, scene, body.resolution, body.samples)
            except SubmitError as exc:
                raise HTTPException(422, str(exc)) from None
            while len(inspected) > keep:
                del inspected[next(iter(inspected))]
        settings, ru = inspected[key]
        adverts = snapshots.adverts()
        proposal = propose_max_price(offers(adverts, ru), roles.build, body.frames,
                                     DEFAULT_CHECKER_FEE_BPS)  # fmt: skip
        return {
            "ru_per_frame": ru, "frames": body.frames, "renderer_build": roles.build,
            "settings": {"engine": settings.engine, "samples": settings.samples,
                         "resolution": [settings.resolution_x, settings.resolution_y]},
            "checkers": checkers(adverts),
            "proposal": None if proposal is None else {
                "max_price_per_frame": money(proposal.max_price_wei_per_frame),
                "workers": proposal.workers, "cheapest_ask": money(proposal.cheapest_ask_wei),
                "estimate": money(proposal.estimate_wei), "budget": money(proposal.budget_wei)},
        }  # fmt: skip


def _frame_routes(app: FastAPI, auth: list[Any], roles: Roles, ui_dir: Path) -> None:
    """A job's frames as they arrive: one PNG, or all of them in a zip."""

    @app.get("/v1/ui/jobs/{job_id}/frames/{frame}", dependencies=auth,
             summary="One rendered frame (PNG)")  # fmt: skip
    async def frame_png(job_id: str, frame: int, download: bool = False) -> Response:
        job = find_job(roles.requester.jobs, job_id)
        if frame not in job.spec.frames:
            raise HTTPException(404, f"frame {frame} is not in job {job.job_id.hex()[:16]}")
        path = job.out_dir / f"frame_{frame:04d}.png"
        if not path.is_file():
            raise HTTPException(404, f"frame {frame} has not arrived yet")
        name = f"{job.job_id.hex()[:16]}-frame_{frame:04d}.png"
        return FileResponse(path, media_type="image/png",
                            filename=name if download else None)  # fmt: skip

    @app.get("/v1/ui/jobs/{job_id}/frames.zip", dependencies=auth,
             summary="Every frame of a job that has arrived, in one zip")  # fmt: skip
    async def frames_zip(job_id: str) -> Response:
        job = find_job(roles.requester.jobs, job_id)
        pngs = [job.out_dir / f"frame_{f:04d}.png" for f in job.spec.frames]
        zip_path = await trio.to_thread.run_sync(_zip, [p for p in pngs if p.is_file()], ui_dir)
        return FileResponse(zip_path, media_type="application/zip",
                            filename=f"{job.job_id.hex()[:16]}-frames.zip",
                            background=BackgroundTask(zip_path.unlink, missing_ok=True))  # fmt: skip


def _page(body: bytes, kind: str) -> Any:
    async def page() -> Response:
        return Response(body, media_type=kind, headers=PAGE_HEADERS)

    return page


def _zip(pngs: list[Path], ui_dir: Path) -> Path:
    if not pngs:
        raise HTTPException(404, "no frame has arrived yet")
    ui_dir.mkdir(parents=True, exist_ok=True)
    for old in ui_dir.glob("*.zip"):  # left by downloads cut short (their cleanup never ran)
        if time.time() - old.stat().st_mtime > STALE_ZIP_S:
            old.unlink(missing_ok=True)
    with tempfile.NamedTemporaryFile(dir=ui_dir, suffix=".zip", delete=False) as out:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # PNGs: compressed already
            for png in pngs:
                archive.write(png, png.name)
    return Path(out.name)


async def _events(snapshots: Snapshots, limits: UiLimits) -> AsyncIterator[str]:
    """Each changed document as an SSE ``data:`` line; a comment now and then so that a
    dead connection is noticed; the stream ends after ``stream_max_s``."""
    # A deadline, not a cancel scope: a generator must not yield inside one.
    end_s = trio.current_time() + limits.stream_max_s
    last, quiet_s = "", 0.0
    yield "retry: 2000\n\n"
    while trio.current_time() < end_s:
        text = json.dumps(await snapshots.get(), separators=(",", ":"))
        if text != last:
            last, quiet_s = text, 0.0
            yield f"data: {text}\n\n"
        elif quiet_s >= KEEPALIVE_S:
            quiet_s = 0.0
            yield ": keepalive\n\n"
        await trio.sleep(limits.min_interval_s)
        quiet_s += limits.min_interval_s
