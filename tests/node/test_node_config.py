"""Config: file + env + flags, later wins; unknown keys and bad values refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import CONFIG_TEMPLATE, ConfigError, load_config
from protocol.messages import Role


def test_defaults_and_template_parse(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG_TEMPLATE)
    config = load_config(tmp_path, environ={})
    assert config.api_port == 7878
    assert config.advert_interval_s == 30.0
    assert config.db_path == tmp_path / "node.sqlite3"


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('api_port = 1000\nbootstrap = ["/a"]\nmdns = false\n')
    env = {"PICTOR_API_PORT": "2000", "PICTOR_BOOTSTRAP": "/b,/c", "HOME": "/x"}
    config = load_config(tmp_path, environ=env, overrides={"api_port": 3000, "roles": None})
    assert config.api_port == 3000
    assert config.bootstrap == ("/b", "/c")
    assert config.mdns is False
    roles = load_config(tmp_path, environ={}, overrides={"roles": ["worker", "client"]}).roles
    assert roles == (Role.WORKER, Role.CLIENT)


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("api_prot = 1\n", {}, "unknown config key 'api_prot'; accepted keys:"),
        ("mdns = 3\n", {}, "bad value 3 for 'mdns'; accepted: true or false"),
        ('log_level = "loud"\n', {}, "'log_level'; accepted: one of debug, info"),
        ('roles = ["miner"]\n', {}, "'roles'; accepted: a list of worker, checker, client"),
        ("api_port = 70000\n", {}, "'api_port'; accepted: 0..65535"),
        ("", {"PICTOR_ADVERT_INTERVAL_S": "soon"}, "PICTOR_ADVERT_INTERVAL_S: bad value 'soon'"),
        ("", {"PICTOR_COLOUR": "red"}, "unknown config key 'colour'"),
        ("api_port = [\n", {}, "not valid TOML"),
    ],
)
def test_errors_name_key_and_accepted_values(
    tmp_path: Path, text: str, env: dict[str, str], needle: str
) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ=env)
    assert needle in str(info.value)


def test_tool_variables_are_not_mistaken_for_config(tmp_path: Path) -> None:
    env = {
        "PICTOR_ANVIL": "/opt/anvil",
        "PICTOR_BPY_PYTHON": "/opt/bpy/python",
        "PICTOR_TEST_POSTGRES_URL": "postgresql://x@y/z",
        "PICTOR_API_PORT": "2001",
    }
    assert load_config(tmp_path, environ=env).api_port == 2001


def test_checkers_must_cover_a_pass_claim_by_default(tmp_path: Path) -> None:
    """checker_stake_wei: -1 (the escrow's SLASH_CAP, read from the chain) unless set; 0
    turns it off; nothing else below 0. The devnet's checkers stake the escrow's checker
    minimum, which covers the default cap, so `pictor demo` keeps its checkers."""
    from ledger.deploy import EscrowParams
    from node.config import PASS_CLAIM_STAKE

    assert load_config(tmp_path, environ={}).checker_stake_wei == PASS_CLAIM_STAKE
    env = {"PICTOR_CHECKER_STAKE_WEI": "0"}
    assert load_config(tmp_path, environ=env).checker_stake_wei == 0
    flags = {"checker_stake_wei": 10**18}
    assert load_config(tmp_path, environ=env, overrides=flags).checker_stake_wei == 10**18
    with pytest.raises(ConfigError, match="or -1: the escrow's SLASH_CAP"):
        load_config(tmp_path, environ={"PICTOR_CHECKER_STAKE_WEI": "-2"})
    assert EscrowParams().checker_min_stake_wei >= EscrowParams().slash_cap_wei
