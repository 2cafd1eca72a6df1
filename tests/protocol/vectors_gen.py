"""Write the wire test vectors in ``docs/vectors/*.json`` from the real code.

``python -m tests.protocol.vectors_gen`` rewrites the files;
``tests/protocol/test_vectors.py`` regenerates them in memory and fails on any
difference, so the vectors cannot drift from what the node really sends.

Everything is deterministic: keys come from fixed seeds (``vectors_samples``),
nonces and timestamps are constants, Ed25519 and RFC 6979 secp256k1
signatures are deterministic, and the stream exchanges (``vectors_streams``)
are recorded from the node's own framing, content and record-sync code over
in-memory streams. Negative vectors are in ``vectors_negative``, the EIP-712
result/fraud/clean signatures in ``vectors_claims``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.crypto import keccak

from ledger import vouchers as ledger_vouchers
from node.content.cid import cid_of_bytes
from node.content.source import DEFAULT_CHUNK_BYTES
from protocol import encode_envelope
from protocol.codec import packb, to_wire, unpackb
from protocol.envelope import SIGNING_DOMAIN
from protocol.identity import BIND_ADDRESS_DOMAIN, address_text
from protocol.messages import Message, job_id_of
from tests.protocol.vectors_samples import (
    ALICE,
    BOB,
    CAROL,
    IDENTITIES,
    LARGE_CONTENT_BYTES,
    NOW_MS,
    SMALL_CONTENT,
    TestIdentity,
    jsonable,
    manifest_of,
    nonce_for,
    pattern_bytes,
    sample_messages,
    sample_spec,
    signed_voucher,
    task_id_of,
)

VECTORS_DIR = Path(__file__).resolve().parents[2] / "docs" / "vectors"

# ------------------------------------------------------------------ vectors


def keys_vectors() -> dict[str, Any]:
    from node.net.dht import network_key, peer_key

    return {
        "comment": "Test keys only: never use these seeds for anything real. dht_peer_key = "
        "SHA-256('pictor/1/peer/' || peer_id_bytes); dht_network_keys: SHA-256('pictor/1/network/' "
        "|| chain id in decimal) (docs/PROTOCOL.md §1, Kademlia DHT).",
        "dht_network_keys": [
            {"chain_id": chain, "key": network_key(chain).hex()} for chain in (1, 31337)
        ],
        "identities": [
            {
                "name": ident.name,
                "role": ident.role,
                "ed25519_seed": ident.node_seed.hex(),
                "node_id": ident.key.node_id.raw.hex(),
                "peer_id": ident.key.node_id.text,
                "peer_id_bytes": (b"\x00\x24\x08\x01\x12\x20" + ident.key.node_id.raw).hex(),
                "payment_private_key": ident.payment_key.hex(),
                "payment_address": address_text(ident.address),
                "dht_peer_key": peer_key(ident.key.node_id.text).hex(),
            }
            for ident in IDENTITIES.values()
        ],
    }


def envelope_vector(
    name: str, signer: TestIdentity, message: Message, nonce: int
) -> dict[str, Any]:
    data = encode_envelope(signer.key, message, nonce=nonce, now_ms=NOW_MS)
    items = unpackb(data)
    body = items[5]
    return {
        "name": name,
        "type": items[1],
        "signer": signer.name,
        "sender": items[2].hex(),
        "peer_id": signer.key.node_id.text,
        "nonce": nonce,
        "timestamp_ms": NOW_MS,
        "body": jsonable(body),
        "body_msgpack": packb(body).hex(),
        "signing_input": (SIGNING_DOMAIN + packb(items[:6])).hex(),
        "signature": items[6].hex(),
        "envelope": data.hex(),
        "digest": hashlib.sha256(data).hexdigest(),
    }


def envelope_vectors() -> dict[str, Any]:
    return {
        "comment": "Envelopes of every message type; 'body' is the msgpack tree as JSON with "
        'bin values as {"bin": hex}. Integers may exceed 2^53.',
        "signing_domain": SIGNING_DOMAIN.hex(),
        "now_ms": NOW_MS,
        "vectors": [
            envelope_vector(name, signer, message, nonce_for(i))
            for i, (name, signer, message) in enumerate(sample_messages())
        ],
    }


def job_id_vectors() -> dict[str, Any]:
    out = []
    for with_escrow in (True, False):
        spec = sample_spec(with_escrow)
        encoded = packb(to_wire(spec))
        out.append(
            {
                "name": "with_escrow" if with_escrow else "without_escrow",
                "spec": jsonable(to_wire(spec)),
                "spec_msgpack": encoded.hex(),
                "hash_input": (b"pictor/job-spec/v1\x00" + encoded).hex(),
                "job_id": job_id_of(spec).hex(),
            }
        )
    job = job_id_of(sample_spec())
    return {
        "comment": "job_id = SHA-256(b'pictor/job-spec/v1\\x00' || msgpack(JobSpec)). task_id "
        "is opaque to other nodes; 'task_ids' shows how the reference requester derives them.",
        "vectors": out,
        "task_ids": [
            {"job_id": job.hex(), "award_number": n, "task_id": task_id_of(job, n).hex()}
            for n in (1, 2)
        ],
    }


def binding_vector(ident: TestIdentity) -> dict[str, Any]:
    binding = ident.binding
    text = (
        f"Pictor: payment address {address_text(ident.address)} belongs to node "
        f"{ident.key.node_id.text}"
    )
    signable = encode_defunct(text=text)
    recovered = Account.recover_message(signable, signature=binding.address_signature)
    assert recovered == address_text(ident.address), "binding text differs from the code's"
    return {
        "name": ident.name,
        "node": binding.node.hex(),
        "peer_id": ident.key.node_id.text,
        "address": address_text(binding.address),
        "node_signing_input": (BIND_ADDRESS_DOMAIN + binding.address).hex(),
        "node_signature": binding.node_signature.hex(),
        "text": text,
        "eip191_digest": keccak(b"\x19" + signable.version + signable.header + signable.body).hex(),
        "address_signature": binding.address_signature.hex(),
        "binding_msgpack": packb(to_wire(binding)).hex(),
    }


def binding_vectors() -> dict[str, Any]:
    return {
        "comment": "PaymentBinding: Ed25519 over domain || address; EIP-191 personal_sign of "
        "'text' by the address (r || s || v, v in {27, 28}).",
        "node_domain": BIND_ADDRESS_DOMAIN.hex(),
        "vectors": [binding_vector(ident) for ident in IDENTITIES.values()],
    }


VOUCHER_TYPE = "Voucher(address requester,bytes32 jobId,address payee,uint256 cumulative)"


def voucher_vectors() -> dict[str, Any]:
    out = []
    for payee, amount in ((BOB, 10**16), (CAROL, 10**15), (BOB, 2 * 10**16)):
        voucher = signed_voucher(payee.address, amount)
        signable = ledger_vouchers.signable(voucher)
        out.append(
            {
                "chain_id": voucher.chain_id,
                "verifying_contract": address_text(voucher.contract),
                "requester": address_text(voucher.requester),
                "job_id": voucher.job_id.hex(),
                "payee": address_text(voucher.payee),
                "cumulative_wei": str(voucher.cumulative_wei),
                "domain_separator": bytes(signable.header).hex(),
                "struct_hash": bytes(signable.body).hex(),
                "digest": ledger_vouchers.digest(voucher).hex(),
                "signer": address_text(ALICE.address),
                "signature": voucher.signature.hex(),
            }
        )
    return {
        "comment": "EIP-712 vouchers signed by alice's payment key. cumulative_wei is decimal text.",
        "domain_type": "EIP712Domain(string name,string version,uint256 chainId,address "
        "verifyingContract)",
        "domain": {"name": ledger_vouchers.DOMAIN_NAME, "version": ledger_vouchers.DOMAIN_VERSION},
        "voucher_type": VOUCHER_TYPE,
        "voucher_typehash": keccak(VOUCHER_TYPE.encode()).hex(),
        "vectors": out,
    }


def content_vectors() -> dict[str, Any]:
    large = pattern_bytes(LARGE_CONTENT_BYTES)
    return {
        "comment": "CIDv1 raw sha2-256 base32; manifests with the reference's 1 MiB chunks.",
        "chunk_size_bytes": DEFAULT_CHUNK_BYTES,
        "vectors": [
            {
                "name": "small",
                "content": SMALL_CONTENT.hex(),
                "cid": cid_of_bytes(SMALL_CONTENT),
                "manifest": manifest_of(SMALL_CONTENT).encode().hex(),
            },
            {
                "name": "large",
                "content_formula": "byte i is i mod 251",
                "size_bytes": LARGE_CONTENT_BYTES,
                "sha256": hashlib.sha256(large).hexdigest(),
                "cid": cid_of_bytes(large),
                "manifest": manifest_of(large).encode().hex(),
                "chunk_sha256": [d.hex() for d in manifest_of(large).chunk_digests],
            },
        ],
    }


def all_vectors() -> dict[str, Any]:
    from tests.protocol.vectors_claims import claim_vectors
    from tests.protocol.vectors_negative import negative_vectors
    from tests.protocol.vectors_streams import stream_vectors
    from tests.protocol.vectors_tiles import tile_vectors

    return {
        "keys.json": keys_vectors(),
        "envelopes.json": envelope_vectors(),
        "job_ids.json": job_id_vectors(),
        "bindings.json": binding_vectors(),
        "vouchers.json": voucher_vectors(),
        "claims.json": claim_vectors(),
        "content.json": content_vectors(),
        "streams.json": stream_vectors(),
        "negative.json": negative_vectors(),
        "tiles.json": tile_vectors(),
    }


def render(vectors: dict[str, Any]) -> dict[str, str]:
    return {
        name: json.dumps(doc, indent=1, ensure_ascii=False) + "\n" for name, doc in vectors.items()
    }


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else VECTORS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in render(all_vectors()).items():
        (out_dir / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
