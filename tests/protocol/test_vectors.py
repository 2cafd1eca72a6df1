"""docs/vectors/*.json are what the code produces, and they check out independently.

The first test regenerates every file in memory from the real code and fails
on any difference (run ``python -m tests.protocol.vectors_gen`` after a
deliberate wire change). The others re-check the vectors with libraries other
than ``protocol/`` where that is possible (PyNaCl, eth-account, hashlib, raw
msgpack), so a vector is not only self-consistent with the code that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import msgpack
import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_keys import keys
from eth_utils.crypto import keccak
from nacl.signing import VerifyKey

from node.content.manifest import decode_manifest
from protocol import decode_envelope
from protocol.messages import MESSAGE_TYPES
from tests.protocol import vectors_gen

VECTORS = vectors_gen.VECTORS_DIR


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def test_vectors_match_what_the_code_produces() -> None:
    expected = vectors_gen.render(vectors_gen.all_vectors())
    on_disk = {p.name for p in VECTORS.glob("*.json")}
    assert on_disk == set(expected), "run: python -m tests.protocol.vectors_gen"
    stale = [name for name, text in expected.items() if (VECTORS / name).read_text() != text]
    assert not stale, f"{stale} differ from the code; run: python -m tests.protocol.vectors_gen"


def test_every_message_type_has_an_envelope_vector() -> None:
    types = {v["type"] for v in load("envelopes.json")["vectors"]}
    assert types == set(MESSAGE_TYPES)


@pytest.mark.parametrize("vector", load("envelopes.json")["vectors"], ids=lambda v: v["name"])
def test_envelope_vector_checks_out(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["envelope"])
    items = msgpack.unpackb(data, raw=False)
    assert items[:5] == [
        1,
        vector["type"],
        bytes.fromhex(vector["sender"]),
        vector["nonce"],
        vector["timestamp_ms"],
    ]
    assert msgpack.packb(items[5], use_bin_type=True).hex() == vector["body_msgpack"]
    signing_input = bytes.fromhex(vector["signing_input"])
    # domain, then the array-of-6 header, then exactly the envelope's first six items
    assert signing_input[:20] == b"pictor/envelope/v1\x00\x96" and data[:1] == b"\x97"
    head_items = signing_input[20:]
    assert data[1 : 1 + len(head_items)] == head_items
    assert data[1 + len(head_items) :] == b"\xc4\x40" + bytes.fromhex(vector["signature"])
    VerifyKey(bytes.fromhex(vector["sender"])).verify(
        signing_input, bytes.fromhex(vector["signature"])
    )
    assert hashlib.sha256(data).hexdigest() == vector["digest"]
    envelope = decode_envelope(data)
    assert envelope.type == vector["type"] and str(envelope.sender) == vector["peer_id"]


@pytest.mark.parametrize("vector", load("bindings.json")["vectors"], ids=lambda v: v["name"])
def test_binding_vector_checks_out(vector: dict[str, Any]) -> None:
    address = bytes.fromhex(vector["address"][2:])
    node_input = bytes.fromhex(vector["node_signing_input"])
    assert node_input == b"pictor/bind-payment-address/v1\x00" + address
    VerifyKey(bytes.fromhex(vector["node"])).verify(
        node_input, bytes.fromhex(vector["node_signature"])
    )
    assert vector["text"] == (
        f"Pictor: payment address {vector['address']} belongs to node {vector['peer_id']}"
    )
    signature = bytes.fromhex(vector["address_signature"])
    assert signature[64] in (27, 28)
    signer = Account.recover_message(encode_defunct(text=vector["text"]), signature=signature)
    assert signer == vector["address"]


@pytest.mark.parametrize("vector", load("vouchers.json")["vectors"], ids=lambda v: v["payee"])
def test_voucher_vector_checks_out(vector: dict[str, Any]) -> None:
    digest = bytes.fromhex(vector["digest"])
    separator, struct_hash = (
        bytes.fromhex(vector["domain_separator"]),
        bytes.fromhex(vector["struct_hash"]),
    )
    assert keccak(b"\x19\x01" + separator + struct_hash) == digest
    signature = bytes.fromhex(vector["signature"])
    assert signature[64] in (27, 28)
    sig = keys.Signature(signature[:64] + bytes([signature[64] - 27]))
    address = sig.recover_public_key_from_msg_hash(digest).to_checksum_address()
    assert address == vector["signer"]


def test_job_id_vectors_check_out() -> None:
    for vector in load("job_ids.json")["vectors"]:
        spec = bytes.fromhex(vector["spec_msgpack"])
        assert bytes.fromhex(vector["hash_input"]) == b"pictor/job-spec/v1\x00" + spec
        assert hashlib.sha256(b"pictor/job-spec/v1\x00" + spec).hexdigest() == vector["job_id"]


def test_content_vectors_check_out() -> None:
    doc = load("content.json")
    for vector in doc["vectors"]:
        manifest = bytes.fromhex(vector["manifest"])
        size = vector.get("size_bytes") or len(bytes.fromhex(vector["content"]))
        chunks = -(-size // doc["chunk_size_bytes"])
        assert len(manifest) == 52 + 32 * chunks
        digest = manifest[8:40]
        decoded = decode_manifest(manifest, digest, 1 << 33, 4 << 20)
        assert decoded.size_bytes == size and decoded.chunk_size_bytes == 1 << 20
        assert vector["cid"].startswith("bafkrei")


def test_stream_vectors_are_four_byte_framed() -> None:
    doc = load("streams.json")
    for exchange in doc["market"] + doc["content"] + doc["record_sync"]:
        sent = bytes.fromhex(exchange["opener_sends"]["hex"])
        (length,) = struct.unpack(">I", sent[:4])
        assert length == len(sent) - 4
        reply = exchange["responder_sends"]
        if reply.get("hex"):
            body = bytes.fromhex(reply["hex"])
            assert struct.unpack(">I", body[:4])[0] == len(body) - 4
    accepted = [e for e in doc["market"] if e["name"].endswith("_accepted")]
    assert accepted and all(e["responder_sends"]["hex"] == "0000000100" for e in accepted)


def test_record_sync_vectors_check_out() -> None:
    """Pages hold the very envelopes of envelopes.json, in store order, as [last_seq, [...]]."""
    envelopes = {v["type"]: bytes.fromhex(v["envelope"]) for v in load("envelopes.json")["vectors"]}
    order = ["job_announce", "work_record", "dispute_record", "job_closed"]
    pages = {e["name"]: e for e in load("streams.json")["record_sync"]}
    expected = {"sync_first_page": (0, 256, 4, order), "sync_two_items": (0, 2, 2, order[:2]),
                "sync_next_page": (2, 2, 4, order[2:]), "sync_end": (4, 256, 4, [])}  # fmt: skip
    assert set(pages) == set(expected)
    for name, (after, limit, last, types) in expected.items():
        assert msgpack.unpackb(bytes.fromhex(pages[name]["request"])) == [after, limit]
        reply = bytes.fromhex(pages[name]["responder_sends"]["hex"])[4:]
        assert msgpack.unpackb(reply, raw=False) == [last, [envelopes[t] for t in types]]


_EIP712_FIELDS = {"requester": "address", "jobId": "bytes32", "worker": "address",
                  "checker": "address", "taskId": "bytes32", "frame": "uint256", "frameDigest": "bytes32",
                  "tiles": "bytes32", "amount": "uint256", "round": "uint256", "claimId": "bytes32",
                  "commit": "bytes32",
                  "rung": "uint256"}  # fmt: skip


@pytest.mark.parametrize("vector", load("claims.json")["vectors"], ids=lambda v: v["name"])
def test_claim_vector_checks_out(vector: dict[str, Any]) -> None:
    """Hashed again from the type text alone with eth-account, signer recovered with eth-keys."""
    doc = load("claims.json")
    primary, fields = vector["type"].split("(", 1)
    names = [f.split(" ")[1] for f in fields.rstrip(")").split(",")]
    assert list(vector["message"]) == [n for n in _EIP712_FIELDS if n in names]
    message = {n: v if _EIP712_FIELDS[n] == "address" else
               int(v) if _EIP712_FIELDS[n] == "uint256" else bytes.fromhex(v)
               for n, v in vector["message"].items()}  # fmt: skip
    signable = encode_typed_data(
        domain_data={"name": "Pictor Escrow", "version": "1", "chainId": doc["chain_id"],
                     "verifyingContract": doc["verifying_contract"]},
        message_types={primary: [{"name": n, "type": _EIP712_FIELDS[n]} for n in names]},
        message_data=message,
    )
    assert bytes(signable.header).hex() == vector["domain_separator"]
    assert bytes(signable.body).hex() == vector["struct_hash"]
    digest = keccak(b"\x19\x01" + bytes(signable.header) + bytes(signable.body))
    assert digest.hex() == vector["digest"]
    assert keccak(vector["type"].encode()).hex() == vector["typehash"]
    signature = bytes.fromhex(vector["signature"])
    assert signature[64] in (27, 28)
    sig = keys.Signature(signature[:64] + bytes([signature[64] - 27]))
    assert sig.recover_public_key_from_msg_hash(digest).to_checksum_address() == vector["signer"]
    tiles = hashlib.sha256(bytes.fromhex(doc["tiles_domain"]) + b"".join(
        sorted(bytes.fromhex(d) for d in doc["verdict_digests"]))).hexdigest()  # fmt: skip
    assert tiles == doc["tiles"]
    if vector["name"] == "pass":  # a pass commits to its own verdict's body digest
        tiles = hashlib.sha256(bytes.fromhex(doc["tiles_domain"])
                               + bytes.fromhex(doc["pass_verdict_digest"])).hexdigest()  # fmt: skip
    assert vector["message"].get("tiles", tiles) == tiles
    if vector["name"] == "rung":  # the claim it names, recomputed from the fraud vector's fields
        fraud = next(v["message"] for v in doc["vectors"] if v["name"] == "fraud")
        claim_id = keccak(abi_encode(["address", "bytes32", "address", "bytes32", "uint256"], [
            fraud["requester"], bytes.fromhex(fraud["jobId"]), fraud["worker"],
            bytes.fromhex(fraud["taskId"]), fraud["frame"]]))  # fmt: skip
        commit = keccak(abi_encode(["bytes32", "bytes32", "address[]"], [
            bytes.fromhex(fraud["frameDigest"]), bytes.fromhex(tiles), doc["claimers"]]))  # fmt: skip
        assert (vector["message"]["claimId"], vector["message"]["commit"]) == (claim_id.hex(), commit.hex())
        assert (doc["claim_id"], doc["commit"]) == (claim_id.hex(), commit.hex())
