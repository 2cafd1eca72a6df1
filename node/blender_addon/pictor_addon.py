"""Pictor: render the current scene's frame range on a Pictor network.

Install: Edit > Preferences > Add-ons > Install... > this file; enable "Render: Pictor".
A panel in Properties > Render submits the scene to the local Pictor node
(``pictor node run``; its data directory holds ``api.addr`` and ``api.token``)
and shows the job's progress. The node does the rest: preflight, escrow,
market, verification, payment; accepted frames land in the output folder.

Runs inside Blender's own Python: stdlib only (urllib), nothing from Pictor.
"""

# Blender declares properties as annotations that are calls, and bpy has no stubs:
# mypy cannot type this file, which only ever runs inside Blender (Python 3.10+;
# annotations stay eager, as Blender reads them at class registration).
# mypy: ignore-errors
import json
import os
import tempfile
import urllib.error
import urllib.request
from typing import Any

import bpy

bl_info = {
    "name": "Pictor",
    "author": "Pictor",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Properties > Render > Pictor",
    "description": "Render the frame range on a peer-to-peer Pictor network",
    "category": "Render",
}

POLL_S = 2.0
WEI_PER_ETH = 10**18


def _api(settings: Any) -> tuple[str, str]:
    data_dir = bpy.path.abspath(settings.data_dir) or os.path.expanduser("~/.pictor")
    with open(os.path.join(data_dir, "api.token")) as f:
        token = f.read().strip()
    addr = os.path.join(data_dir, "api.addr")
    base = open(addr).read().strip() if os.path.exists(addr) else "http://127.0.0.1:7878"
    return base, token


def _request(
    settings: Any,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    timeout_s: float = 600,
) -> Any:
    base, token = _api(settings)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise RuntimeError(f"node refused: {exc.code} {detail}") from None


def eth_text_to_wei(text: str) -> int:
    """``"0.2"`` -> 200000000000000000, exactly (money is integers; this file runs in
    Blender's own Python, so it cannot use the node's ``protocol.money``)."""
    whole, _, fraction = text.strip().removesuffix("ETH").removesuffix("eth").strip().partition(".")
    if not (whole or fraction) or not (whole or "0").isdigit() or not (fraction or "0").isdigit():
        raise ValueError(f"{text!r} is not an amount of ETH (e.g. 0.2)")
    if len(fraction) > 18:
        raise ValueError(f"{text!r} has more than 18 decimals")
    return int(whole or "0") * WEI_PER_ETH + int(fraction.ljust(18, "0"))


def wei_to_eth_text(wei: int) -> str:
    whole, fraction = divmod(wei, WEI_PER_ETH)
    return f"{whole}.{fraction:018d}".rstrip("0").rstrip(".") + " ETH"


def _update(settings: Any, job: dict[str, Any]) -> None:
    settings.job_id = job["job_id"]
    settings.frames_done = job["frames_accepted"]
    settings.frames_total = job["frames_total"]
    settings.spent = wei_to_eth_text(int(job["spent_wei"]))
    settings.state = job["outcome"] or job["state"]


class PictorSettings(bpy.types.PropertyGroup):
    data_dir: bpy.props.StringProperty(
        name="Node data dir",
        subtype="DIR_PATH",
        description="The local node's data directory (~/.pictor)",
    )
    max_price_eth: bpy.props.StringProperty(name="Max price / frame (ETH)", default="0.2")
    deadline_h: bpy.props.FloatProperty(name="Deadline (hours)", default=2.0, min=0.01)
    out_dir: bpy.props.StringProperty(name="Output", subtype="DIR_PATH", default="//pictor-out")
    job_id: bpy.props.StringProperty(name="Job")
    state: bpy.props.StringProperty(name="State")
    frames_done: bpy.props.IntProperty(name="Frames done")
    frames_total: bpy.props.IntProperty(name="Frames")
    spent: bpy.props.StringProperty(name="Spent")


class PICTOR_OT_submit(bpy.types.Operator):
    """Submit the scene's frame range to the local Pictor node"""

    bl_idname = "pictor.submit"
    bl_label = "Render on Pictor"

    def execute(self, context: Any) -> set[str]:
        scene = context.scene
        settings = scene.pictor
        # The node renders a file: save a copy of what is open now (unsaved edits included).
        folder = tempfile.mkdtemp(prefix="pictor-addon-")
        path = os.path.join(folder, "scene.blend")
        bpy.ops.wm.save_as_mainfile(filepath=path, copy=True)
        out_dir = (
            bpy.path.abspath(settings.out_dir)
            if bpy.data.filepath
            else os.path.join(folder, "pictor-out")
        )
        try:
            max_price_wei = eth_text_to_wei(settings.max_price_eth)
        except ValueError as exc:
            self.report({"ERROR"}, f"Pictor: {exc}")
            return {"CANCELLED"}
        body = {
            "scene": path,
            "frames": list(range(scene.frame_start, scene.frame_end + 1, scene.frame_step)),
            "max_price_wei_per_frame": max_price_wei,
            "deadline_s": settings.deadline_h * 3600,
            "out_dir": out_dir,
        }
        try:
            job = _request(settings, "POST", "/v1/client/jobs", body)
        except (OSError, RuntimeError) as exc:
            self.report({"ERROR"}, f"Pictor: {exc}")
            return {"CANCELLED"}
        _update(settings, job)
        self.report({"INFO"}, f"Pictor job {job['job_id'][:16]} submitted")
        print("PICTOR_JOB", job["job_id"], flush=True)
        if not bpy.app.background:
            bpy.app.timers.register(_poll, first_interval=POLL_S)
        return {"FINISHED"}


class PICTOR_OT_refresh(bpy.types.Operator):
    """Fetch the job's progress from the local node"""

    bl_idname = "pictor.refresh"
    bl_label = "Refresh"

    def execute(self, context: Any) -> set[str]:
        settings = context.scene.pictor
        if not settings.job_id:
            return {"CANCELLED"}
        try:
            _update(
                settings,
                _request(settings, "GET", "/v1/client/jobs/" + settings.job_id, timeout_s=10),
            )
        except (OSError, RuntimeError) as exc:
            self.report({"ERROR"}, f"Pictor: {exc}")
            return {"CANCELLED"}
        return {"FINISHED"}


def _poll() -> float | None:
    settings = bpy.context.scene.pictor
    try:
        job = _request(settings, "GET", "/v1/client/jobs/" + settings.job_id, timeout_s=5)
    except (OSError, RuntimeError):
        return POLL_S  # the node may be restarting: keep trying
    _update(settings, job)
    for area in getattr(bpy.context.screen, "areas", []):
        area.tag_redraw()
    return None if job["outcome"] else POLL_S


class PICTOR_PT_panel(bpy.types.Panel):
    bl_label = "Pictor"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"

    def draw(self, context: Any) -> None:
        settings = context.scene.pictor
        layout = self.layout
        layout.prop(settings, "data_dir")
        layout.prop(settings, "max_price_eth")
        layout.prop(settings, "deadline_h")
        layout.prop(settings, "out_dir")
        scene = context.scene
        layout.operator(
            "pictor.submit", text=f"Render frames {scene.frame_start}–{scene.frame_end}"
        )
        if settings.job_id:
            box = layout.box()
            box.label(text=f"Job {settings.job_id[:16]}: {settings.state}")
            box.label(
                text=f"{settings.frames_done}/{settings.frames_total} frames, "
                f"{settings.spent} spent"
            )
            box.operator("pictor.refresh")


CLASSES = (PictorSettings, PICTOR_OT_submit, PICTOR_OT_refresh, PICTOR_PT_panel)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.pictor = bpy.props.PointerProperty(type=PictorSettings)


def unregister() -> None:
    del bpy.types.Scene.pictor
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
