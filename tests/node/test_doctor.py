"""`pictor doctor`: each check says what it found and what to do (issue 19)."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

from typer.testing import CliRunner

from node.cli.doctor import (
    check_chain,
    check_ports,
    clock_skew_s,
    judge_checker_stake,
    judge_clock,
)
from node.cli.init_cmd import init
from node.cli.main import app
from node.config import load_config


def advert(signed_ms: int, received_ms: int) -> dict[str, int]:
    return {"advert_timestamp_ms": signed_ms, "received_ms": received_ms}


def test_clock_skew_from_adverts_and_its_verdict() -> None:
    adverts = [advert(1_000, 1_005), advert(2_000, 92_000), advert(3_000, 93_500)]
    skew = clock_skew_s(adverts)
    assert skew == 90.0  # the median: one fast peer does not decide
    assert judge_clock(skew, 60.0, "peers").status == "fail"
    assert "timedatectl" in judge_clock(skew, 60.0, "peers").fix
    assert judge_clock(20.0, 60.0, "peers").status == "warn"
    assert judge_clock(-0.2, 60.0, "peers").status == "ok"
    assert judge_clock(None, 60.0, "peers").status == "warn"
    assert clock_skew_s([]) is None


def test_ports_in_use_and_chain_not_answering(tmp_path: Path) -> None:
    init(tmp_path)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        config = replace(load_config(tmp_path), api_port=port, listen_addrs=())
        busy = check_ports(config)
        assert busy.status == "fail" and f"127.0.0.1:{port}" in busy.detail
    assert check_ports(config).status == "ok"  # released
    none, _ = check_chain(load_config(tmp_path))
    assert none.status == "warn" and "chain_rpc_url" in none.fix
    dead = replace(load_config(tmp_path), chain_rpc_url=f"http://127.0.0.1:{port}", chain_id=1)
    down, offset = check_chain(dead)
    assert down.status == "fail" and "does not answer" in down.detail and offset is None


def test_doctor_command_reports_every_check(tmp_path: Path) -> None:
    init(tmp_path)
    result = CliRunner().invoke(app, ["doctor", "--data-dir", str(tmp_path)])
    for name in ("blender", "sandbox", "gpu", "chain", "node", "ports", "clock"):
        assert f"│ {name}" in result.output, result.output
    assert f"pictor node run --data-dir {tmp_path}" in result.output
    assert result.exit_code in (0, 1)  # 1 only when a check failed
    assert (result.exit_code == 1) == ("│ fail" in result.output)


def test_a_checker_is_told_when_its_stake_keeps_requesters_away() -> None:
    """Requesters ask only checkers whose stake covers a claim of their pass (the cap), by
    default: a checker below it gets no checks, and is told the command that fixes it."""
    cap, minimum = 10**17, 10**18
    short = judge_checker_stake(0, False, minimum, cap)
    assert short.status == "fail" and short.fix == f"pictor stake deposit {minimum} --checker"
    assert "0.1 ETH" in short.detail
    unregistered = judge_checker_stake(cap, False, minimum, cap)
    assert unregistered.status == "warn" and "not registered" in unregistered.detail
    assert judge_checker_stake(minimum, True, minimum, cap).status == "ok"
    topped = judge_checker_stake(cap, True, minimum, cap)
    assert topped.status == "warn" and topped.fix == f"pictor stake deposit {minimum - cap} --checker"
    # stake locked by claims it signed: requesters read free stake
    locked = judge_checker_stake(minimum, True, minimum, cap, locked_wei=minimum - cap + 1)
    assert locked.status == "fail" and "locked by claims" in locked.detail
    assert locked.fix == f"pictor stake deposit {cap + 1} --checker"  # two caps free, no more
    # holding enough, not registered: a wei's deposit registers it
    assert judge_checker_stake(3 * minimum, False, minimum, cap).fix == "pictor stake deposit 1 --checker"
    # an escrow whose minimum is under two caps: registered, asked, but no claim's signer
    small = judge_checker_stake(cap, True, cap, cap)
    assert small.status == "warn" and "cannot sign a claim" in small.detail
    assert small.fix == f"pictor stake deposit {cap} --checker"
