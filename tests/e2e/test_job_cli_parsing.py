"""The `pictor job` argument parsers (fast; no processes)."""

from __future__ import annotations

import pytest
import typer

from node.cli.job import parse_duration_s, parse_frames, parse_wei


def test_frames_ranges_and_lists() -> None:
    assert parse_frames("1-4") == [1, 2, 3, 4]
    assert parse_frames("1,3,5-7, 3") == [1, 3, 5, 6, 7]
    for bad in ("4-1", "a", "1-", ""):
        with pytest.raises(typer.BadParameter):
            parse_frames(bad)


def test_durations_and_amounts() -> None:
    assert parse_duration_s("2h") == 7200
    assert parse_duration_s("90") == 90
    assert parse_duration_s("1.5m") == 90
    assert parse_wei("0.02eth") == 2 * 10**16
    assert parse_wei("5gwei") == 5 * 10**9
    assert parse_wei("1000") == 1000
    with pytest.raises(typer.BadParameter):
        parse_duration_s("2 weeks")
    with pytest.raises(typer.BadParameter):
        parse_wei("-1eth")
