"""docs/PROTOCOL.md describes every message and field the code defines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from protocol import specgen
from protocol.messages import MESSAGE_CLASSES
from protocol.topics import GOSSIP_TOPICS, STREAM_PROTOCOLS

SPEC = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()


def test_every_message_type_and_field_is_in_the_spec() -> None:
    missing = []
    for cls in MESSAGE_CLASSES:
        if f"`{cls.TYPE}` — {cls.__name__}" not in SPEC:  # type: ignore[attr-defined]
            missing.append(cls.TYPE)  # type: ignore[attr-defined]
        missing += [
            f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls) if f"`{f.name}`" not in SPEC
        ]
    assert not missing, (
        f"docs/PROTOCOL.md lacks {missing}; run python -m protocol.specgen --write docs/PROTOCOL.md"
    )


def test_generated_tables_are_current() -> None:
    assert specgen.splice(SPEC) == SPEC, "run: python -m protocol.specgen --write docs/PROTOCOL.md"


def test_topics_and_stream_ids_are_in_the_spec() -> None:
    for name in (*GOSSIP_TOPICS, *STREAM_PROTOCOLS):
        assert f"`{name}`" in SPEC


def test_the_check_notices_a_missing_message() -> None:
    without = SPEC.replace("`result` — Result", "")
    assert specgen.splice(without) != without or "`result` — Result" in specgen.tables()
