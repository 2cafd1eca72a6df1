"""Pictor's long-lived render script, run *inside* Blender, never in the node.

    blender -b -Y --factory-startup SCENE --python-exit-code 1 \
        --python pictor_serve.py -- serve.json

One Blender process per job: the scene is loaded once, then the node sends
commands and this script renders them, one at a time, until told to quit, its
channel closes, or it has been idle ``idle_s`` (so a node that forgot it does
not keep a loaded scene forever). serve.json::

    {"fd": 7, "idle_s": 330}

``fd`` is one end of a socketpair the node passed down. Messages both ways are
a 4-byte big-endian length and a JSON object. A render command::

    {"op": "render", "job": {...blender_job.py's document, without border...},
     "dir": "out-3", "items": [{"frame": 1, "tile": null | [x0, y0, x1, y1],
                                "name": "frame_000001.png"}, ...]}

A whole frame (``tile`` null) is pinned with ``blender_job._pin``, set with
``frame_set`` and rendered to ``dir/name``. Consecutive tiles of one frame
render together through ``blender_tiles_job.render_tiles``, as the one-shot
tile script does: pinned once (the border ``blender_tiles_job.border`` gives),
one ``frame_set``, one scene sync kept between the tiles. The reply::

    {"ok": true, "items": [{"name": ..., "render_s": 0.41}, ...], "cpu_s": 12.3}
    {"ok": false, "error": "..."}

``cpu_s`` is this process's CPU time so far: the node retires a process before
its CPU rlimit (set once for the whole process) could end a frame.
Blender's own progress lines (``Fra:N ... Sample a/b``) go to stdout as usual.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import struct
import sys
import time
from typing import Any

import bpy

MAX_COMMAND_BYTES = 1 << 20
_HERE = os.path.dirname(os.path.abspath(__file__))


_MODULES: dict[str, Any] = {}


def _load(name: str) -> Any:
    """One of our scripts copied next to this one (pictor_job.py, pictor_tiles.py), once."""
    if name in _MODULES:
        return _MODULES[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(_HERE, name + ".py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _MODULES[name] = module
    return module


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def receive(sock: socket.socket) -> dict[str, Any] | None:
    """The next command, or None when the node closed the channel or we sat idle too long."""
    try:
        head = _recv_exact(sock, 4)
        if head is None:
            return None
        (size,) = struct.unpack(">I", head)
        if size > MAX_COMMAND_BYTES:
            return None
        body = _recv_exact(sock, size)
    except TimeoutError:
        return None
    return None if body is None else json.loads(body)


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    sock.sendall(struct.pack(">I", len(body)) + body)


def render(command: dict[str, Any], pin: Any) -> dict[str, Any]:
    scene = bpy.context.scene
    job = command["job"]
    out_dir = os.path.join(_HERE, os.path.basename(command["dir"]))
    done = []
    for run in _runs(command["items"]):
        paths = [os.path.join(out_dir, os.path.basename(item["name"])) for item in run]
        if run[0].get("tile"):  # tiles of one frame: one pin, one frame_set, one scene sync
            tiles = [item["tile"] for item in run]
            seconds = _load("pictor_tiles").render_tiles(
                scene, pin, job, run[0]["frame"], tiles, paths
            )
        else:
            start = time.perf_counter()
            pin(scene, {**job, "border": None})
            scene.frame_set(run[0]["frame"])
            scene.render.filepath = paths[0]
            bpy.ops.render.render(write_still=True)
            seconds = [time.perf_counter() - start]
        done += [
            {"name": i["name"], "render_s": round(s, 4)} for i, s in zip(run, seconds, strict=True)
        ]
    return {"ok": True, "items": done, "cpu_s": round(time.process_time(), 3)}


def _runs(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Whole frames one by one; consecutive tiles of one frame together."""
    runs: list[list[dict[str, Any]]] = []
    for item in items:
        last = runs[-1][-1] if runs else None
        if (item.get("tile") and last is not None and last.get("tile")
                and last["frame"] == item["frame"]):  # fmt: skip
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def main(argv: list[str]) -> None:
    with open(argv[argv.index("--") + 1]) as f:
        config = json.load(f)
    pin = _load("pictor_job")._pin
    sock = socket.socket(fileno=config["fd"])
    sock.settimeout(config["idle_s"])
    while (command := receive(sock)) is not None and command.get("op") == "render":
        sock.settimeout(None)  # a reply is always sent, however long the render
        try:
            reply = render(command, pin)
        except Exception as exc:  # the node decides what a failed command means
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        send(sock, reply)
        sock.settimeout(config["idle_s"])
    sock.close()


if __name__ == "__main__":
    main(sys.argv)
