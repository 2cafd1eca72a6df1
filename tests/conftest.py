"""Suite-wide pytest hooks.

The suite runs on pytest-xdist workers (scripts/test): their environment is made the
plain run's (execnet sets COLUMNS=80 and LINES=24 in each, so the CLI's piped output
wrapped where the tests read it whole), and the longest test files are handed out first
(a 5-minute file started last would be the run's tail).

A trio test that fails inside libp2p's nested nurseries reports an exception group
nested past Python's ``max_group_depth`` (10), so the failure itself was cut from the
report (tests/conformance/test_node_conformance.py failed that way once, under CI-like
load, and said nothing of why). Each failure now also lists its leaf exceptions with
their innermost frames.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Generator, Iterator

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):  # set by execnet, not by the user's terminal
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a ``long`` test first, then those with a ``slow`` one, each file's tests
    in their order (``--dist loadfile`` hands out whole files, in collection order)."""
    rank: dict[str, int] = {}
    for item in items:
        r = 0 if item.get_closest_marker("long") else 1 if item.get_closest_marker("slow") else 2
        rank[item.nodeid.split("::")[0]] = min(r, rank.get(item.nodeid.split("::")[0], 2))
    items.sort(key=lambda item: rank[item.nodeid.split("::")[0]])


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
