"""Suite-wide pytest hooks.

The suite runs on pytest-xdist workers (scripts/test): their environment is made the
plain run's (execnet sets COLUMNS=80 and LINES=24 in each, so the CLI's piped output
wrapped where the tests read it whole).

A SIGTERM (scripts/test's cleanup, when CI cancels a run) stops the run as ^C does, so
that fixtures tear down what they started: the devnets' nodes run in their own sessions
and outlive a pytest killed outright.

A trio test that fails inside libp2p's nested nurseries reports an exception group
nested past Python's ``max_group_depth`` (10), so the failure itself was cut from the
report (tests/conformance/test_node_conformance.py failed that way once, under CI-like
load, and said nothing of why). Each failure now also lists its leaf exceptions with
their innermost frames.
"""

from __future__ import annotations

import os
import signal
import traceback
from collections.abc import Generator, Iterator

import pytest
from hypothesis import settings

# Property tests check what is true, not how fast: speed is measured in bench/. Hypothesis's
# default 200 ms deadline per example failed test_tiles's grid property (264 ms, then 103 ms
# on its replay) on a loaded 2-core CI box; 15 tests had each turned it off by hand.
settings.register_profile("pictor", deadline=None)
settings.load_profile("pictor")

if os.environ.get("PYTEST_XDIST_WORKER"):  # set by execnet, not by the user's terminal
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, _interrupt)


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside ``exc``'s (nested) groups; ``exc`` when it is none."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    outcome = yield
    report = outcome.get_result()
    if (
        report.failed
        and call.excinfo is not None
        and isinstance(call.excinfo.value, BaseExceptionGroup)
    ):
        found = [
            "".join(traceback.format_exception(leaf, limit=-6))
            for leaf in leaves(call.excinfo.value)
        ]
        report.sections.append(("leaf exceptions", "\n".join(found)))
