"""The rules a job's journal names (node.roles.rules): any change to the protocol
package's source, to the node's code that replays a journal or to the node's market
settings changes them."""

from __future__ import annotations

import shutil
from pathlib import Path

import protocol
from node.roles.rules import REPLAY_FILES, rules_digest
from protocol.market import MarketConfig


def test_the_rules_change_with_any_source_or_setting(tmp_path: Path) -> None:
    here = Path(protocol.__file__).parents[1]
    shutil.copytree(here / "protocol", tmp_path / "protocol",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in REPLAY_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(here / name, tmp_path / name)
    settings = repr(MarketConfig()).encode()
    same = rules_digest(settings, tmp_path)
    assert same == rules_digest(settings) == rules_digest(settings, tmp_path)
    assert rules_digest(repr(MarketConfig(dispute_window_ms=1)).encode(), tmp_path) != same
    seen = {same}
    for name in ("protocol/market/lanes.py", REPLAY_FILES[0]):
        path = tmp_path / name
        path.write_text(path.read_text() + "\n# a comment\n")
        seen.add(rules_digest(settings, tmp_path))
    (tmp_path / "protocol" / "market" / "new_rule.py").write_text("")
    seen.add(rules_digest(settings, tmp_path))
    assert len(seen) == 4


def test_an_installation_without_sources_names_no_rules(tmp_path: Path) -> None:
    try:
        rules_digest(b"", tmp_path)
    except RuntimeError as exc:
        assert "no protocol sources" in str(exc)
    else:
        raise AssertionError("named rules without sources")
