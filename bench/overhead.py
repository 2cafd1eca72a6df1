"""Pictor's overhead on one machine: a job through a 1-worker devnet vs Blender alone.

    python bench/overhead.py [--frames 24] [--resolution 160x120] [--samples 16]

Baseline, same run, same scene and settings: ``blender -b scene.blend -a``
(one process renders every frame). Pictor: the same frames as one job on a
local devnet with one worker and one checker (verification on), timed from
submit to the job's end (frames collected in the output folder). CPU time is
every process involved: Blender for the baseline; for Pictor the five
processes' own and reaped children's time (node, Blender renders and tile
re-renders) read from /proc over the job's interval, plus anvil. Goal: wall
ratio <= 1.05 (issue 15).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/protocol.py would shadow the protocol package: the repository comes first.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from node.devnet.network import DevnetConfig, LocalDevnet
from node.devnet.scene import build_scene

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# The devnet asks 10^17 wei per render unit and a 640x360, 64-sample frame of its scene
# is 6 RU (protocol/cost.py): 2 * 10^17 a frame, as before the cost model, got no bid.
MAX_PRICE_WEI_PER_FRAME = 10**19
PIN = (
    "import bpy; s = bpy.context.scene; s.render.resolution_x, s.render.resolution_y = {w}, {h};"
    "s.render.resolution_percentage = 100; s.cycles.samples = {samples};"
    "s.cycles.use_denoising = False; s.cycles.use_adaptive_sampling = False"
)


def _stat(pid: int) -> list[str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()


def cpu_s_of(pid: int) -> float:
    """utime + stime + reaped children's (fields 14-17 of /proc/PID/stat) of a live
    process, plus the same for each of its live descendants: a warm Blender process
    still running when the job ends has not been reaped, so its time is in no
    parent's cutime yet (counting only the node missed it)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                continue  # gone meanwhile
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += sum(int(v) for v in _stat(current)[11:15])
        except OSError:
            continue  # exited and reaped meanwhile: counted in its parent's cutime
        todo += children.get(current, [])
    return total / TICKS_PER_S


def baseline(scene: Path, frames: int, w: int, h: int, samples: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="pictor-bench-") as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        subprocess.run(
            ["blender", "-b", "-Y", "--factory-startup", str(scene), "--python-expr",
             PIN.format(w=w, h=h, samples=samples), "-o", f"{out}/frame_####", "-F", "PNG",
             "-s", "1", "-e", str(frames), "-a"],
            check=True, capture_output=True,
        )  # fmt: skip
        wall_s = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall_s, cpu_s


def through_pictor(base: Path, scene: Path, frames: int, w: int, h: int, samples: int
                   ) -> tuple[float, float]:  # fmt: skip
    with LocalDevnet(base / "net", DevnetConfig(workers=1, checkers=1)) as net:
        client = net.api("client")
        client.wait_until("/v1/network", lambda v: len(v) >= 2, 60)
        assert net.chain is not None and net.chain.process is not None
        pids = [n.pid for n in net.nodes.values() if n.pid] + [net.chain.process.pid]
        cpu_before = sum(cpu_s_of(p) for p in pids)
        started = time.monotonic()
        job = client.post("/v1/client/jobs", {
            "scene": str(scene), "frames": list(range(1, frames + 1)),
            "max_price_wei_per_frame": MAX_PRICE_WEI_PER_FRAME, "out_dir": str(base / "out"),
            "resolution": [w, h], "samples": samples,
        })  # fmt: skip
        final = client.wait_job(job["job_id"], 3600)
        wall_s = time.monotonic() - started
        cpu_s = sum(cpu_s_of(p) for p in pids) - cpu_before
    if final["outcome"] != "completed":
        raise SystemExit(f"job ended {final['outcome']}")
    return wall_s, cpu_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--resolution", default="160x120")
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    w, h = (int(v) for v in args.resolution.split("x"))
    with tempfile.TemporaryDirectory(prefix="pictor-bench-") as tmp:
        base = Path(tmp)
        scene = build_scene(base / "scene.blend", args.frames)
        direct_wall_s, direct_cpu_s = baseline(scene, args.frames, w, h, args.samples)
        wall_s, cpu_s = through_pictor(base, scene, args.frames, w, h, args.samples)
    print(f"{args.frames} frames at {w}x{h}, {args.samples} samples, {os.cpu_count()} CPUs")
    print(f"blender -a   wall {direct_wall_s:7.1f} s   cpu {direct_cpu_s:7.1f} s")
    print(f"pictor job   wall {wall_s:7.1f} s   cpu {cpu_s:7.1f} s   (1 worker, 1 checker)")
    print(f"ratio        wall {wall_s / direct_wall_s:7.2f}     cpu {cpu_s / direct_cpu_s:7.2f}"
          "     (goal: wall <= 1.05)")  # fmt: skip


if __name__ == "__main__":
    main()
