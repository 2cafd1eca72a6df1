"""Typed errors for an unreachable endpoint and a wrong chain."""

from __future__ import annotations

import socket

import pytest

from ledger.backends import connect
from ledger.client import EscrowClient
from ledger.errors import ChainMismatch, ChainUnreachable, TxRejected
from ledger.tx import TxConfig, TxSender, with_retries
from tests.ledger.conftest import Deployed, Env


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_endpoint_is_a_typed_error() -> None:
    with pytest.raises(ChainUnreachable, match="cannot reach"):
        connect(f"http://127.0.0.1:{closed_port()}", 1, timeout_s=2)


def test_retries_then_gives_up() -> None:
    calls = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset")
        return 7

    assert with_retries(flaky, TxConfig(rpc_attempts=3, retry_backoff_s=0), "flaky") == 7
    calls.clear()
    with pytest.raises(ChainUnreachable):
        with_retries(flaky, TxConfig(rpc_attempts=2, retry_backoff_s=0), "flaky")


def test_client_refuses_an_address_without_contract(embedded_deployed: Deployed) -> None:
    chain = embedded_deployed.chain
    sender = TxSender(chain.w3, chain.funded_keys[0])
    with pytest.raises(ChainMismatch, match="no contract"):
        EscrowClient(sender, "0x" + "12" * 20)


@pytest.mark.slow
def test_chain_id_mismatch_is_refused(anvil_deployed: Deployed) -> None:
    url = anvil_deployed.chain.rpc_url
    assert url is not None
    assert connect(url, 31337).eth.chain_id == 31337
    with pytest.raises(ChainMismatch, match="serves chain id 31337"):
        connect(url, 1)


def test_stale_nonce_is_rejected_not_reverted(env: Env) -> None:
    sender = env.requester.sender  # the deployer: nonce 0 is long used
    prepared = sender.prepare(env.requester.calls.stake(1).fn, 1)
    with pytest.raises(TxRejected):
        sender.send(prepared, nonce=0)
    assert env.requester.send(env.requester.calls.stake(1))["status"] == 1
