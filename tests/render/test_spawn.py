"""A sandboxed child lives as long as its node, not as long as a worker thread.

bubblewrap's ``--die-with-parent`` (PR_SET_PDEATHSIG) fires when the thread
that forked it exits. On main trio forked it from a cached worker thread,
which exits after 10 s idle: every render longer than that was SIGKILLed
mid-frame. Here the cache's idle timeout is cut to 50 ms, so a 2 s child
shows the old behaviour (-9) quickly; with the spawner thread it finishes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from node.render.sandbox import SandboxLimits, probe_sandbox, run_sandboxed

pytestmark = pytest.mark.skipif(
    not probe_sandbox().filesystem_isolated, reason="bubblewrap missing or refused here"
)


async def test_a_child_outlives_the_worker_thread_that_asked_for_it(
    work_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trio._core._thread_cache, "IDLE_TIMEOUT", 0.05)
    code = "import time; time.sleep(2); print('finished', flush=True)"
    started = time.monotonic()
    with trio.fail_after(60):
        result = await run_sandboxed(["/usr/bin/python3", "-c", code], work_root,
                                     SandboxLimits(wall_s=60), probe_sandbox())  # fmt: skip
    assert result.returncode == 0, result.tail
    assert result.tail.strip() == "finished" and time.monotonic() - started >= 2
