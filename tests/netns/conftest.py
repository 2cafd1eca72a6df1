"""Fixtures for tests across network namespaces (see harness.py): skip, with the reason,
where namespaces cannot be made; tear every namespace down after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.netns.harness import Internet, unavailable_reason


@pytest.fixture(scope="session")
def netns_ok() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def internet(netns_ok: None) -> Iterator[Internet]:
    with Internet() as net:
        yield net
