"""Choosing a backend from config, and the `pictor chain up` network."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.anvil import find_anvil
from ledger.config import ChainConfig, open_chain
from ledger.deploy import EscrowParams
from ledger.devnet import bring_up
from ledger.errors import ChainMismatch


def test_embedded_is_the_default() -> None:
    w3, chain = open_chain(ChainConfig())
    assert chain is not None
    assert w3.eth.chain_id == chain.chain_id
    chain.close()


def test_rpc_backend_needs_url_and_chain_id() -> None:
    with pytest.raises(ChainMismatch, match="needs both"):
        open_chain(ChainConfig(backend="rpc", rpc_url="http://127.0.0.1:1"))


def test_dev_chain_with_wrong_chain_id_is_refused() -> None:
    with pytest.raises(ChainMismatch, match="config says 1"):
        open_chain(ChainConfig(chain_id=1))


@pytest.mark.slow
def test_chain_up_deploys_both_contracts() -> None:
    if find_anvil() is None:
        pytest.skip("anvil binary missing: npm install --prefix .cache/npm @foundry-rs/anvil")
    chain, net = bring_up(EscrowParams(slash_quorum=2), accounts=3)
    with chain:
        assert net.chain_id == 31337 and len(net.accounts) == 3
        assert chain.w3.eth.get_code(chain.w3.to_checksum_address(net.escrow))
        assert chain.w3.eth.get_code(chain.w3.to_checksum_address(net.token))
    assert chain.process is not None and chain.process.poll() is not None  # stopped


def test_find_anvil_prefers_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "anvil"
    binary.write_text("")
    monkeypatch.setenv("PICTOR_ANVIL", str(binary))
    assert find_anvil() == binary
    monkeypatch.setenv("PICTOR_ANVIL", str(tmp_path / "missing"))
    assert find_anvil() is None  # an explicit setting is never second-guessed
