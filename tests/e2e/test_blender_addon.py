"""The Blender add-on, headless: install and enable it from the file, run its operator
against a running node, and see the job finish through the node's API."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import JOB_TIMEOUT_S, needs_stack

pytestmark = [pytest.mark.slow, needs_stack]
ADDON = Path(__file__).resolve().parents[2] / "node" / "blender_addon" / "pictor_addon.py"

EXPR = """
import bpy
bpy.ops.preferences.addon_install(filepath={addon!r})
bpy.ops.preferences.addon_enable(module="pictor_addon")
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, 2
scene.render.resolution_x, scene.render.resolution_y = 64, 48
scene.render.resolution_percentage = 100
scene.cycles.samples = 8
scene.pictor.data_dir = {data_dir!r}
scene.pictor.out_dir = {out_dir!r}
scene.pictor.max_price_eth = "2.5x"
try:  # not an amount: refused with the reason (an operator's error raises headless)
    bpy.ops.pictor.submit()
    raise AssertionError("a price that is not an amount was accepted")
except RuntimeError as exc:
    assert "not an amount of ETH" in str(exc), exc
assert not scene.pictor.job_id  # nothing was sent
scene.pictor.max_price_eth = "0.2"
assert bpy.ops.pictor.submit() == {{"FINISHED"}}
assert scene.pictor.frames_total == 2
"""


def test_addon_submits_the_frame_range_and_shows_progress(
    devnet_factory: Any, scene: Path, tmp_path: Path
) -> None:
    net = devnet_factory(workers=1, checkers=1)
    client_dir = net.nodes["client"].data_dir
    out = tmp_path / "out"
    expr = EXPR.format(addon=str(ADDON), data_dir=str(client_dir), out_dir=str(out))
    # A private user-scripts folder: installing the add-on must not touch the user's Blender.
    env = {**os.environ, "BLENDER_USER_SCRIPTS": str(tmp_path / "scripts")}
    done = subprocess.run(
        ["blender", "-b", "-Y", "--factory-startup", str(scene), "--python-exit-code", "1",
         "--python-expr", expr],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    job_ids = [
        line.split()[1] for line in done.stdout.splitlines() if line.startswith("PICTOR_JOB")
    ]
    assert len(job_ids) == 1
    job = net.api("client").wait_job(job_ids[0], JOB_TIMEOUT_S)
    assert job["outcome"] == "completed"
    assert job["settings"]["resolution"] == [64, 48]
    assert job["max_price_wei_per_frame"] == 2 * 10**17  # exactly: parsed as integers
    assert sorted(p.name for p in out.glob("*.png")) == ["frame_0001.png", "frame_0002.png"]
