"""``pictor coordinator run``: its config, and what it says when it cannot start."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from coordinator.service import coordinator_config
from node.cli.init_cmd import init
from node.cli.main import app


def test_without_a_data_dir_it_says_how_to_make_one(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = CliRunner().invoke(app, ["coordinator", "run", "--data-dir", str(missing)])
    assert result.exit_code == 2
    assert f"pictor init --data-dir {missing}" in " ".join(result.output.split())


def test_a_coordinator_has_no_roles_is_public_and_listens_where_told(tmp_path: Path) -> None:
    init(tmp_path)
    (tmp_path / "config.toml").write_text('roles = ["worker"]\nreachability = "private"\n')
    config = coordinator_config(tmp_path, ("/ip4/127.0.0.1/tcp/4001",), environ={})
    assert config.roles == ()
    assert config.reachability == "public"
    assert config.listen_addrs == ("/ip4/127.0.0.1/tcp/4001",)
    assert not config.mdns
