"""``pictor explorer serve``: registered, documented, refuses bad options before starting."""

from __future__ import annotations

from typer.testing import CliRunner

from node.cli.main import app


def test_serve_is_registered_with_its_options() -> None:
    result = CliRunner().invoke(app, ["explorer", "serve", "--help"])
    assert result.exit_code == 0
    for option in ("--bootstrap", "--chain-rpc", "--contract", "--db", "--port"):
        assert option in result.output


def test_bad_options_exit_2_with_a_message() -> None:
    runner = CliRunner()
    bad_db = runner.invoke(app, ["explorer", "serve", "--db", "mysql://nope"])
    assert bad_db.exit_code == 2 and "--db" in bad_db.output
    no_contract = runner.invoke(app, ["explorer", "serve", "--chain-rpc", "http://127.0.0.1:1"])
    assert no_contract.exit_code == 2 and "--contract" in no_contract.output
