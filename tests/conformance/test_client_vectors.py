"""The spec-only client reproduces docs/vectors byte for byte.

This is what a second implementation would run first: if these pass, its
codec, envelopes, binding, job ids, CIDs, manifests and framing agree with
the reference without a network. The client must not lean on the reference
code, so the last test checks its imports.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import client

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "vectors"


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"bin"}:
            return bytes.fromhex(value["bin"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


IDENTITIES = {
    i["name"]: client.Identity(
        bytes.fromhex(i["ed25519_seed"]), bytes.fromhex(i["payment_private_key"])
    )
    for i in load("keys.json")["identities"]
}


def test_peer_ids_and_addresses() -> None:
    for ident in load("keys.json")["identities"]:
        me = IDENTITIES[ident["name"]]
        assert me.peer_id == ident["peer_id"] and me.public.hex() == ident["node_id"]
        assert "0x" + me.address.hex() == ident["payment_address"].lower()
        assert client.dht_peer_key(me.peer_id_bytes).hex() == ident["dht_peer_key"]
    for network in load("keys.json")["dht_network_keys"]:
        assert client.dht_network_key(network["chain_id"]).hex() == network["key"]


@pytest.mark.parametrize("vector", load("envelopes.json")["vectors"], ids=lambda v: v["name"])
def test_envelopes_reproduced(vector: dict[str, Any]) -> None:
    me = IDENTITIES[vector["signer"]]
    data = me.envelope(vector["type"], from_json(vector["body"]), nonce=vector["nonce"],
                       now_ms=vector["timestamp_ms"])  # fmt: skip
    assert data.hex() == vector["envelope"]
    opened = client.open_envelope(data)
    assert opened.digest.hex() == vector["digest"] and opened.sender == me.public
    if vector["type"] == "capacity_advert":
        client.check_binding(opened.body["payment"], opened.sender)


def test_bindings_reproduced() -> None:
    for vector in load("bindings.json")["vectors"]:
        binding = IDENTITIES[vector["name"]].binding()
        assert client.canonical(binding).hex() == vector["binding_msgpack"]


def test_job_ids_reproduced() -> None:
    for vector in load("job_ids.json")["vectors"]:
        assert client.job_id(from_json(vector["spec"])).hex() == vector["job_id"]


def test_content_reproduced() -> None:
    small = load("content.json")["vectors"][0]
    data = bytes.fromhex(small["content"])
    assert client.cid_of(data) == small["cid"]
    assert client.manifest_of(data).hex() == small["manifest"]
    large = load("content.json")["vectors"][1]
    pattern = bytes(i % 251 for i in range(large["size_bytes"]))
    assert client.cid_of(pattern) == large["cid"]
    assert client.manifest_of(pattern).hex() == large["manifest"]
    assert client.parse_manifest(client.manifest_of(pattern), large["cid"])[0] == len(pattern)


def test_stream_framing_reproduced() -> None:
    doc = load("streams.json")
    envelopes = {v["envelope"] for v in load("envelopes.json")["vectors"]}
    for exchange in doc["market"]:
        sent = bytes.fromhex(exchange["opener_sends"]["hex"])
        assert sent[4:].hex() in envelopes and client.frame(sent[4:]) == sent
        if exchange["name"].endswith("_accepted"):
            assert bytes.fromhex(exchange["responder_sends"]["hex"]) == client.frame(client.ACK)
    small = load("content.json")["vectors"][0]
    blobs = {small["cid"]: bytes.fromhex(small["content"])}
    for exchange in doc["content"]:
        if exchange["name"].endswith("_small") or exchange["name"] == "chunk_small_0":
            sent = bytes.fromhex(exchange["opener_sends"]["hex"])
            reply = client.answer_content(sent[4:], blobs)
            assert client.frame(reply).hex() == exchange["responder_sends"]["hex"]


def test_result_signature_reproduced() -> None:
    """§8.4: the worker's EIP-712 Result signature, from the spec text alone."""
    result = next(v for v in load("envelopes.json")["vectors"] if v["type"] == "result")
    body = from_json(result["body"])
    spec = from_json(load("job_ids.json")["vectors"][0]["spec"])
    assert spec["escrow"] is not None and client.job_id(spec) == body["job_id"]
    sig = IDENTITIES[result["signer"]].result_sig(
        spec["escrow"], spec["requester_address"], body["job_id"], body["task_id"],
        body["frame"], body["frame_cid"])  # fmt: skip
    claim = next(v for v in load("claims.json")["vectors"] if v["name"] == "result")
    assert sig == body["result_sig"] and sig.hex() == claim["signature"]


def test_record_sync_reproduced() -> None:
    """§7.1: requests framed byte for byte; every page parses and its envelopes verify."""
    types = {}
    for exchange in load("streams.json")["record_sync"]:
        after, limit = client.canonical_unpack(bytes.fromhex(exchange["request"]))
        request = client.sync_request(after, limit)
        assert client.frame(request).hex() == exchange["opener_sends"]["hex"]
        reply = bytes.fromhex(exchange["responder_sends"]["hex"])
        assert client.frame(reply[4:]) == reply
        last, envelopes = client.parse_sync_page(reply[4:], after)
        assert last >= after and len(envelopes) <= limit
        types[exchange["name"]] = [e.type for e in envelopes]
    assert types["sync_first_page"] == ["job_announce", "work_record", "dispute_record",
                                        "job_closed"]  # fmt: skip
    assert types["sync_end"] == []


def test_client_refuses_decode_level_negatives() -> None:
    refused = 0
    for vector in load("negative.json")["vectors"]:
        if (
            vector["path"] != "envelope"
            or vector["error"]
            not in ("MalformedMessage", "Oversize", "UnsupportedVersion", "BadSignature")
            or "hex" not in vector["input"]
            or vector["name"] == "string_over_field_limit"
        ):
            continue  # field limits need the schemas, which this client does not carry
        with pytest.raises(Exception):  # noqa: B017 - msgpack's own errors count as refusals
            client.open_envelope(bytes.fromhex(vector["input"]["hex"]))
        refused += 1
    assert refused >= 12


def test_client_does_not_import_the_reference() -> None:
    tree = ast.parse((Path(__file__).parent / "client.py").read_text())
    roots = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    roots |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    assert not roots & {"node", "protocol", "ledger", "tests"}, roots


def test_tile_selection_reproduced() -> None:
    """§6.1: the cells a verify_request's tile_secret selects, from the spec text alone,
    and the reference requester's tile secrets."""
    doc = load("tiles.json")
    assert bytes.fromhex(doc["tiles_domain"]) == client.TILES_DOMAIN
    for v in doc["selections"]:
        tiles = client.select_tiles(bytes.fromhex(v["result_digest"]),
                                    bytes.fromhex(v["tile_secret"]), v["width"], v["height"],
                                    v["k"], v["tile_px"])  # fmt: skip
        assert [list(t) for t in tiles] == v["tiles"]
    for v in doc["tile_secrets"]:
        parts = [bytes.fromhex(v[n]) for n in ("check_secret", "task_id", "result_digest",
                                                "checker")]  # fmt: skip
        assert client.reference_tile_secret(*parts, v["kind"]).hex() == v["tile_secret"]
    assert len({v["tile_secret"] for v in doc["tile_secrets"]}) == len(doc["tile_secrets"])


def test_a_verdict_is_held_to_its_requests_tile_secret() -> None:
    """§6.1: the checker must re-render the request's draw and reveal its secret."""
    v = load("tiles.json")["selections"][0]
    request = {"result_digest": bytes.fromhex(v["result_digest"]),
               "tile_secret": bytes.fromhex(v["tile_secret"]), "tiles": v["k"]}  # fmt: skip
    tiles = [{"x": x, "y": y, "width": w, "height": h} for x, y, w, h in v["tiles"]]
    honest = {"secret": request["tile_secret"], "tiles": tiles}
    assert client.verdict_follows(honest, request, v["width"], v["height"])
    assert not client.verdict_follows({**honest, "secret": bytes(32)}, request, v["width"],
                                      v["height"])  # fmt: skip
    moved = [{**tiles[0], "x": (tiles[0]["x"] + 16) % v["width"]}, *tiles[1:]]
    assert not client.verdict_follows({**honest, "tiles": moved}, request, v["width"],
                                      v["height"])  # fmt: skip


def test_pass_signature_reproduced_and_checked() -> None:
    """§6.1, §8.4: a passing verdict's pass_sig, from the spec text alone: the body digest
    leaves pass_sig out, the Pass commits to it, and a requester takes only the assigned
    checker's signature over that very verdict and frame."""
    verdict = next(v for v in load("envelopes.json")["vectors"] if v["type"] == "verdict")
    body = from_json(verdict["body"])
    spec = from_json(load("job_ids.json")["vectors"][0]["spec"])
    assert client.job_id(spec) == body["job_id"] and body["passed"]
    claims = load("claims.json")
    frame_cid, escrow, requester = claims["frame_cid"], spec["escrow"], spec["requester_address"]
    assert client.verdict_body_digest(body).hex() == claims["pass_verdict_digest"]
    carol = IDENTITIES[verdict["signer"]]
    sig = carol.pass_sig(escrow, requester, body, frame_cid)
    vector = next(v for v in claims["vectors"] if v["name"] == "pass")
    assert sig == body["pass_sig"] and sig.hex() == vector["signature"]
    assert client.pass_signed_by(escrow, requester, body, frame_cid, carol.address)
    bob = IDENTITIES["bob"]
    other_tiles = {**body, "tile_digests": [bytes(32)] * len(body["tile_digests"])}
    refused = [  # unsigned, another key, signed over other tiles, not the assigned checker
        ({**body, "pass_sig": None}, carol.address),
        ({**body, "pass_sig": bob.pass_sig(escrow, requester, body, frame_cid)}, carol.address),
        ({**body, "pass_sig": carol.pass_sig(escrow, requester, other_tiles, frame_cid)},
         carol.address),
        (body, bob.address),
    ]  # fmt: skip
    for v, checker in refused:
        assert not client.pass_signed_by(escrow, requester, v, frame_cid, checker)
    unsigned = {**body, "pass_sig": None}
    assert client.pass_signed_by(None, requester, unsigned, frame_cid, carol.address)  # no escrow
    assert client.pass_signed_by(escrow, requester, {**unsigned, "passed": False}, frame_cid,
                                 carol.address)  # a rejection  # fmt: skip


def test_pass_claim_request_checked_from_the_spec() -> None:
    """§8.4: a fraud_sign_request carrying a pass_verdict names the accused's signed pass of
    that frame, its body digest alone as evidence; anything else is refused unrendered."""
    vector = next(v for v in load("envelopes.json")["vectors"]
                  if v["name"] == "fraud_sign_request_pass")  # fmt: skip
    request = from_json(vector["body"])
    spec = from_json(load("job_ids.json")["vectors"][0]["spec"])
    escrow, requester, cap = spec["escrow"], spec["requester_address"], 10**17
    assert client.pass_claim_refusal(escrow, requester, request, cap) == ""
    verdict = request["pass_verdict"]
    bob = IDENTITIES["bob"]
    refused = [
        {**request, "pass_verdict": None},
        {**request, "pass_verdict": {**verdict, "passed": False}},
        {**request, "frame": request["frame"] + 1},
        {**request, "verdict_digests": [bytes(32)]},
        {**request, "amount_wei": (cap + 1).to_bytes(32, "big")},
        {**request, "worker_address": bob.address},  # not the signer of the pass
        {**request, "frame_cid": client.cid_of(b"another frame")},  # not the frame it signed
    ]
    for bad in refused:
        assert client.pass_claim_refusal(escrow, requester, bad, cap)
