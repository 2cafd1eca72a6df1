"""Off-chain voucher hashing, signing and verification (and agreement with the contract)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from eth_account import Account
from eth_utils.address import to_canonical_address

from ledger import vouchers
from ledger.vouchers import Voucher, VoucherError
from tests.ledger.conftest import Env

REQUESTER = Account.from_key(b"\x11" * 32)
CONTRACT = b"\x22" * 20
JOB = b"\x33" * 32
PAYEE = b"\x44" * 20


def signed(cumulative_wei: int = 10**18, chain_id: int = 1) -> Voucher:
    requester = to_canonical_address(REQUESTER.address)
    return vouchers.sign(Voucher(chain_id, CONTRACT, requester, JOB, PAYEE, cumulative_wei),
                         REQUESTER.key)  # fmt: skip


def verify(v: Voucher) -> None:
    vouchers.verify(v, to_canonical_address(REQUESTER.address), chain_id=1, contract=CONTRACT)


def test_sign_then_verify_round_trip() -> None:
    v = signed()
    assert len(v.signature) == 65
    assert vouchers.recover_signer(v) == to_canonical_address(REQUESTER.address)
    verify(v)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cumulative_wei": 2 * 10**18}, "not signed"),
        ({"payee": b"\x55" * 20}, "not signed"),
        ({"job_id": b"\x66" * 32}, "not signed"),
        ({"chain_id": 5}, "chain 5"),
        ({"requester": b"\x88" * 20}, "another requester"),
        ({"contract": b"\x77" * 20}, "another escrow"),
        ({"signature": b"\x00" * 65}, "v must be"),
        ({"job_id": b"short"}, "32 bytes"),
        ({"cumulative_wei": 0}, "out of range"),
    ],
)
def test_verify_rejects_tampering(change: dict[str, object], message: str) -> None:
    with pytest.raises(VoucherError, match=message):
        verify(replace(signed(), **change))  # type: ignore[arg-type]


def test_high_s_twin_is_rejected() -> None:
    v = signed()
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    r, s, rec = v.signature[:32], int.from_bytes(v.signature[32:64], "big"), v.signature[64]
    twin = r + (n - s).to_bytes(32, "big") + bytes([55 - rec])  # 27 <-> 28
    with pytest.raises(VoucherError, match="malleable"):
        verify(replace(v, signature=twin))


def test_digest_matches_the_contract(env_fast: Env) -> None:
    job_id = os.urandom(32)
    v = env_fast.voucher(job_id, env_fast.workers[0], 12345)
    on_chain = env_fast.requester.contract.functions.voucher_digest(
        env_fast.requester.sender.address, job_id, env_fast.workers[0].sender.address, 12345
    ).call()
    assert bytes(on_chain) == vouchers.digest(v)
