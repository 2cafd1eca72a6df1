"""WarmPool's bounds and lifecycle, with stand-in processes (no Blender, mock clock).

The real process (sandbox, channel, bit-identity) is tests/render/test_warm.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trio

from node.render.base import RenderError
from node.render.blender import BlenderConfig
from node.render.sandbox import SandboxInfo, SandboxLimits
from node.render.warm import ProcessDied, Rendered, WarmConfig, WarmPool, WarmProcess

SANDBOX = SandboxInfo((), True)


class StandIn(WarmProcess):
    """Answers commands without Blender; the test steers it through class attributes."""

    gate: trio.Event | None = None  # commands wait for it when set
    die_next: bool = False  # the next command finds the process dead
    cpu_per_command_s: float = 1.0
    made: ClassVar[list[StandIn]] = []

    def __init__(self, config: BlenderConfig, sandbox: SandboxInfo, idle_s: float) -> None:
        super().__init__(config, sandbox, idle_s)
        self.dead = False
        StandIn.made.append(self)

    @property
    def alive(self) -> bool:
        return not self._closed and not self.dead

    async def start(self, scene: Path, scripts: Mapping[str, Path]) -> None:
        await trio.sleep(2.0)  # Blender's start-up: others may ask meanwhile
        self.opened = True

    async def render(
        self, job: dict[str, Any], items: Sequence[dict[str, Any]], out_dir: Path,
        on_line: Callable[[str], None] | None = None,
    ) -> list[Rendered]:  # fmt: skip
        assert self.opened, "a command sent before the process started"
        try:
            if StandIn.gate is not None:
                await StandIn.gate.wait()
            if StandIn.die_next:
                StandIn.die_next = False
                raise ProcessDied("blender exited -9 before answering")
            if self._closed:
                raise RenderError("blender process closed: its job is over")
            await trio.sleep(1.0)
            self.cpu_s += StandIn.cpu_per_command_s
            return [Rendered(i["name"], out_dir / i["name"], 1.0) for i in items]
        except BaseException:
            await self.close()
            raise
        finally:
            self.last_used = trio.current_time()

    async def close(self, grace_s: float = 0.0) -> None:
        self._closed = True


@pytest.fixture(autouse=True)
def _reset() -> None:
    StandIn.gate, StandIn.die_next, StandIn.cpu_per_command_s, StandIn.made = None, False, 1.0, []


def pool(**warm: Any) -> WarmPool:
    config = BlenderConfig(limits=SandboxLimits(cpu_s=100))
    return WarmPool(config, SANDBOX, WarmConfig(**warm), process_factory=StandIn)


ITEM = [{"frame": 1, "tile": None, "name": "frame_000001.png"}]


async def test_a_new_scene_evicts_the_least_recently_used_idle_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    warm = pool(max_processes=2)
    for name in ("a", "b", "a", "c"):  # c evicts b: a was used after it
        assert await warm.render("frames", Path(name), {}, ITEM, Path("out")) is not None
    assert warm.processes == 2 and warm.started == 3
    assert warm.process_of("frames", Path("b")) is None
    assert warm.process_of("frames", Path("a")) is not None


async def test_when_every_slot_is_busy_the_caller_renders_one_shot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    warm = pool(max_processes=1)
    StandIn.gate = trio.Event()
    answers: list[object] = []
    async with trio.open_nursery() as nursery:

        async def first() -> None:
            answers.append(await warm.render("frames", Path("a"), {}, ITEM, Path("out")))

        nursery.start_soon(first)
        await trio.testing.wait_all_tasks_blocked()  # a's command holds the only slot
        assert await warm.render("frames", Path("b"), {}, ITEM, Path("out")) is None
        StandIn.gate.set()
    assert answers and answers[0] is not None and warm.started == 1


async def test_an_idle_process_is_closed_after_idle_s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    warm = pool(idle_s=60.0)
    await warm.render("frames", Path("a"), {}, ITEM, Path("out"))
    first = StandIn.made[0]
    await trio.sleep(61.0)
    await warm.render("tiles", Path("b"), {}, ITEM, Path("out"))  # any use sweeps
    assert first._closed and warm.process_of("frames", Path("a")) is None


async def test_a_process_is_retired_at_half_its_cpu_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    warm = pool()
    StandIn.cpu_per_command_s = 30.0  # the limit is 100 CPU s for the whole process
    await warm.render("frames", Path("a"), {}, ITEM, Path("out"))
    assert warm.processes == 1
    await warm.render("frames", Path("a"), {}, ITEM, Path("out"))  # 60 s > 50 s: retired
    assert warm.processes == 0 and StandIn.made[0]._closed


async def test_a_process_that_died_idle_is_replaced_and_the_command_retried_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    warm = pool()
    await warm.render("frames", Path("a"), {}, ITEM, Path("out"))
    StandIn.die_next = True
    assert await warm.render("frames", Path("a"), {}, ITEM, Path("out")) is not None
    assert warm.started == 2
    StandIn.die_next = True  # a fresh process that dies: no second retry
    await warm.release("frames", Path("a"))
    with pytest.raises(ProcessDied):
        await warm.render("frames", Path("a"), {}, ITEM, Path("out"))
    assert warm.processes == 0


async def test_a_released_process_is_not_restarted_for_the_command_it_was_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    warm = pool()
    await warm.render("frames", Path("a"), {}, ITEM, Path("out"))
    StandIn.gate = trio.Event()
    async with trio.open_nursery() as nursery:

        async def render() -> None:
            with pytest.raises(RenderError, match="job is over"):
                await warm.render("frames", Path("a"), {}, ITEM, Path("out"))

        nursery.start_soon(render)
        await trio.testing.wait_all_tasks_blocked()
        await warm.release("frames", Path("a"))  # the job was cancelled mid-frame
        StandIn.gate.set()
    assert warm.started == 1 and warm.processes == 0


async def test_two_first_commands_for_one_scene_share_one_process(
    autojump_clock: trio.testing.MockClock,
) -> None:
    warm = pool()
    done: list[object] = []

    async def render() -> None:
        done.append(await warm.render("frames", Path("a"), {}, ITEM, Path("out")))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(render)
        nursery.start_soon(render)
    assert len(done) == 2 and all(d is not None for d in done) and warm.started == 1
