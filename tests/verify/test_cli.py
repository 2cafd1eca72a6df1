"""``pictor verify``: the exit statuses and output outside tools rely on."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from node.cli.verify import verify
from protocol.verification import select_tiles
from tests.verify.conftest import World, needs_blender

app = typer.Typer()
app.command()(verify)
runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _args(world: World, image: Path, *extra: str) -> list[str]:
    return ["--scene", str(world.scene), "--frame", "1", "--image", str(image),
            "--settings", str(world.job_json), *extra]  # fmt: skip


@needs_blender
@pytest.mark.slow
def test_honest_frame_exits_0_with_a_re_derivable_json_verdict(world: World) -> None:
    code, out = _run(*_args(world, world.honest[1], "--json"))
    assert code == 0, out
    doc = json.loads(out)
    assert doc["accepted"] is True and doc["mode"] == "exact" and doc["builds"]["same"] is True
    assert doc["builds"]["checker"]["build"] == "blender-3.4.1"
    digest = hashlib.sha256(world.honest[1].read_bytes()).digest()
    assert doc["result_digest"] == digest.hex()
    tiles = select_tiles(digest, bytes.fromhex(doc["secret"]), 64, 48, len(doc["tiles"]), 16)
    assert [(t.x, t.y, t.width, t.height) for t in tiles] == [
        (t["x"], t["y"], t["width"], t["height"]) for t in doc["tiles"]
    ]
    assert all(
        t["passed"] and t["psnr_db"] is None and t["max_abs_diff"] == 0 for t in doc["tiles"]
    )


@needs_blender
@pytest.mark.slow
def test_tampered_frame_exits_1_and_settings_can_come_from_the_scene(world: World) -> None:
    code, out = _run(*_args(world, world.tampered["other_seed"], "--tiles", "2"))
    assert code == 1, out
    assert "REJECTED" in out and "MISMATCH" in out
    # Without --settings the scene's own settings are used: 320x240, so a 64x48 image is wrong.
    code, out = _run("--scene", str(world.scene), "--frame", "1", "--image", str(world.honest[1]))
    assert code == 2 and "64x48" in out and "320x240" in out


@needs_blender
@pytest.mark.slow
def test_unusable_inputs_exit_2_with_a_hint(world: World, tmp_path: Path) -> None:
    garbage = tmp_path / "frame.png"
    garbage.write_bytes(b"this is not a png")
    code, out = _run(*_args(world, garbage))
    assert code == 2 and "not a readable image" in out
    code, out = _run(*_args(world, tmp_path / "missing.png"))
    assert code == 2 and "no such file" in out
    code, out = _run(*_args(world, world.root / "half" / "frame_000001.png"))  # a 32x24 render
    assert code == 2 and "32x24" in out and "64x48" in out
    code, out = _run(*_args(world, world.honest[1], "--blender", "/nonexistent/blender"))
    assert code == 2 and "renderer not found" in out and "--blender" in out
    bad_settings = tmp_path / "job.json"
    bad_settings.write_text('{"settings": {"resolution_x": "wide"}}')
    code, out = _run("--scene", str(world.scene), "--frame", "1", "--image", str(world.honest[1]),
                     "--settings", str(bad_settings))  # fmt: skip
    assert code == 2 and "resolution_x" in out
    code, out = _run("--frame", "1")
    assert code == 2 and "--scene" in out


def test_wrong_resolution_exits_2_before_any_render(tmp_path: Path) -> None:
    from PIL import Image

    image = tmp_path / "small.png"
    Image.new("RGBA", (10, 10)).save(image)
    scene = tmp_path / "scene.blend"
    scene.write_bytes(b"BLENDER")  # never opened: the size check comes first
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"engine": "CYCLES", "resolution_x": 64, "resolution_y": 48,
                               "samples": 8, "seed": 1, "output_format": "PNG_RGBA8"}))  # fmt: skip
    result = runner.invoke(app, ["--scene", str(scene), "--frame", "1", "--image", str(image),
                                 "--settings", str(job), "--blender", sys.executable, "--json"])  # fmt: skip
    assert result.exit_code == 2
    assert "10x10" in json.loads(result.stdout)["error"]


def test_explain_prints_the_stated_probabilities() -> None:
    code, out = _run("--explain", "--fraction", "0.5", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["k"] == 32 and row["check_probability"] == 1.0
    assert row["p_caught_if_checked"] == pytest.approx(1 - 0.5**32)
    code, out = _run("--explain", "--assurance", "high", "--reputation", "1")
    assert code == 0 and "24 tiles of 16x16 px" in out.splitlines()[0]
    code, out = _run("--explain", "--width", "640")
    assert code == 2


def test_registered_in_the_pictor_command() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from node.cli.main import main; main()", "verify", "--explain",
         "--fraction", "0.1", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["fraction"] == 0.1
