"""The rules a job's journal names (node.roles.rules): any change to the protocol
package's source or to the node's market settings changes them."""

from __future__ import annotations

import shutil
from pathlib import Path

import protocol
from node.roles.rules import rules_digest
from protocol.market import MarketConfig


def test_the_rules_change_with_any_source_or_setting(tmp_path: Path) -> None:
    copy = tmp_path / "protocol"
    shutil.copytree(Path(protocol.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    settings = repr(MarketConfig()).encode()
    same = rules_digest(settings, copy)
    assert same == rules_digest(settings) == rules_digest(settings, copy)
    assert rules_digest(repr(MarketConfig(dispute_window_ms=1)).encode(), copy) != same
    lanes = copy / "market" / "lanes.py"
    lanes.write_text(lanes.read_text() + "\n# a comment\n")
    assert rules_digest(settings, copy) != same
    (copy / "market" / "new_rule.py").write_text("")
    lanes.unlink()
    assert len({same, rules_digest(settings, copy)}) == 2
