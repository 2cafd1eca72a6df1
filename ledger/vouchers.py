"""Cumulative EIP-712 payment vouchers, off-chain: hash, sign, recover, verify.

A voucher says "for job J of requester R, R owes payee P a total of C wei (or
token units) so far". Jobs are keyed on chain by (requester, job id), so the
requester is part of what is signed. Each new voucher for the same (J, P) carries a larger C
and supersedes the older ones; the escrow pays C minus what it already paid.
So a payee only ever needs to keep its latest voucher, and losing or replaying
an old one costs nobody anything.

Typed data (must match ``ledger/contracts/Escrow.vy`` and the wire message):
domain ``{name: "Pictor Escrow", version: "1", chainId, verifyingContract}``,
type ``Voucher(address requester,bytes32 jobId,address payee,uint256 cumulative)``.

Pure functions over eth-account only; nothing here touches a chain.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak

from protocol.messages import Voucher

__all__ = ["Voucher", "VoucherError", "digest", "recover_signer", "sign", "verify"]

DOMAIN_NAME = "Pictor Escrow"
DOMAIN_VERSION = "1"
VOUCHER_TYPE = [
    {"name": "requester", "type": "address"},
    {"name": "jobId", "type": "bytes32"},
    {"name": "payee", "type": "address"},
    {"name": "cumulative", "type": "uint256"},
]
# Signatures with s above half the curve order are the malleable twin of a valid
# one; the contract rejects them, so we never produce or accept them.
SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
UINT256_MAX = 2**256 - 1


class VoucherError(ValueError):
    """A voucher that is malformed or not signed by the expected requester."""


def escrow_domain(chain_id: int, contract: bytes) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(contract),
    }


def check_shape(voucher: Voucher) -> None:
    """Raise VoucherError unless every field has the size the contract expects."""
    if len(voucher.contract) != 20 or len(voucher.payee) != 20 or len(voucher.requester) != 20:
        raise VoucherError("contract, requester and payee must be 20-byte addresses")
    if len(voucher.job_id) != 32:
        raise VoucherError("job_id must be 32 bytes")
    if not 0 < voucher.cumulative_wei <= UINT256_MAX:
        raise VoucherError("cumulative_wei out of range")
    if voucher.chain_id <= 0:
        raise VoucherError("chain_id must be positive")


def signable(voucher: Voucher) -> SignableMessage:
    check_shape(voucher)
    return encode_typed_data(
        domain_data=escrow_domain(voucher.chain_id, voucher.contract),
        message_types={"Voucher": VOUCHER_TYPE},
        message_data={
            "requester": to_checksum_address(voucher.requester),
            "jobId": voucher.job_id,
            "payee": to_checksum_address(voucher.payee),
            "cumulative": voucher.cumulative_wei,
        },
    )


def digest(voucher: Voucher) -> bytes:
    """The 32-byte EIP-712 digest the requester signs (signature ignored)."""
    msg = signable(voucher)
    return keccak(b"\x19" + msg.version + msg.header + msg.body)


def sign(voucher: Voucher, private_key: bytes) -> Voucher:
    """Return ``voucher`` signed with the requester's secp256k1 payment key."""
    signed = Account.sign_message(signable(voucher), private_key)
    return replace(voucher, signature=bytes(signed.signature))


def split_signature(signature: bytes) -> tuple[int, bytes, bytes]:
    """(v, r, s) as the contract's ``Sig`` struct takes them; checks canonical form."""
    if len(signature) != 65:
        raise VoucherError("signature must be 65 bytes")
    r, s, v = signature[:32], signature[32:64], signature[64]
    if v not in (27, 28):
        raise VoucherError("signature v must be 27 or 28")
    if int.from_bytes(s, "big") > SECP256K1_HALF_N:
        raise VoucherError("malleable signature (high s)")
    return v, r, s


def recover_signer(voucher: Voucher) -> bytes:
    """The 20-byte address that signed ``voucher``; VoucherError if none can."""
    split_signature(voucher.signature)
    try:
        address = Account.recover_message(signable(voucher), signature=voucher.signature)
    except (BadSignature, ValueError) as exc:
        raise VoucherError(f"unrecoverable signature: {exc}") from exc
    return to_canonical_address(address)


def verify(voucher: Voucher, requester: bytes, *, chain_id: int, contract: bytes) -> None:
    """Raise VoucherError unless ``voucher`` is for this chain and escrow and
    was signed by ``requester``. Cheap enough to run on every received voucher."""
    if voucher.chain_id != chain_id:
        raise VoucherError(f"voucher for chain {voucher.chain_id}, expected {chain_id}")
    if voucher.contract != contract:
        raise VoucherError("voucher for another escrow contract")
    if voucher.requester != requester:
        raise VoucherError("voucher for another requester's job")
    if recover_signer(voucher) != requester:
        raise VoucherError("voucher not signed by the job's requester")
