"""A minimal Pictor peer written from docs/PROTOCOL.md and docs/vectors only.

It imports nothing from ``node/`` or ``protocol/`` (a test checks that): the
canonical msgpack, envelopes, peer ids, payment binding, job ids, framing,
CIDs, manifests, the content and record-sync protocols, the EIP-712
result and pass signatures and tile selection (which cells a verdict must name) are re-implemented here from the spec's text, with stock libraries (msgpack, PyNaCl, eth-account). The libp2p
layers (TCP, Noise, yamux, gossipsub) are py-libp2p's, as a second
implementation would use its own language's libp2p.
"""

from __future__ import annotations

import hashlib
import struct
from base64 import b32decode, b32encode
from dataclasses import dataclass
from typing import Any

import msgpack
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils.crypto import keccak
from nacl.signing import SigningKey, VerifyKey

ENVELOPE_DOMAIN = b"pictor/envelope/v1\x00"  # §3
BIND_DOMAIN = b"pictor/bind-payment-address/v1\x00"  # §8.1
JOB_DOMAIN = b"pictor/job-spec/v1\x00"  # §8.2
PEER_ID_PREFIX = b"\x00\x24\x08\x01\x12\x20"  # §1: identity multihash of protobuf PublicKey
MARKET = "/pictor/market/1.0.0"
CONTENT = "/pictor/content/1.0.0"
RECORD_SYNC = "/pictor/record-sync/1.0.0"
CAPACITY_TOPIC = "/pictor/1/capacity"
JOBS_TOPIC = "/pictor/1/jobs"
RECORD_TOPIC = "/pictor/1/record"
ACK = b"\x00"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class Refused(Exception):
    """The bytes break the spec; the message names the rule."""


def canonical(obj: object) -> bytes:
    """§2: map keys sorted by UTF-8 bytes, shortest forms (msgpack's own), bin for bytes."""

    def sort(value: object) -> object:
        if isinstance(value, dict):
            return {k: sort(value[k]) for k in sorted(value, key=lambda k: k.encode())}
        if isinstance(value, list | tuple):
            return [sort(v) for v in value]
        if isinstance(value, float):
            raise ValueError("no floats on the wire")
        return value

    return msgpack.packb(sort(obj), use_bin_type=True)  # type: ignore[no-any-return]


def u256(value: int) -> bytes:
    """§2: amounts that may exceed 64 bits are bin 32, big-endian."""
    return value.to_bytes(32, "big")


def b58(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def peer_id(public_key: bytes) -> str:
    return b58(PEER_ID_PREFIX + public_key)


@dataclass
class Opened:
    type: str
    sender: bytes
    nonce: int
    timestamp_ms: int
    body: dict[str, Any]
    digest: bytes


class Identity:
    def __init__(self, seed: bytes, payment_key: bytes) -> None:
        self._key = SigningKey(seed)
        self.public = bytes(self._key.verify_key)
        self.peer_id = peer_id(self.public)
        self.peer_id_bytes = PEER_ID_PREFIX + self.public
        self._account = Account.from_key(payment_key)
        self.address = bytes.fromhex(self._account.address[2:])

    def envelope(self, msg_type: str, body: dict[str, Any], *, nonce: int, now_ms: int) -> bytes:
        head = [1, msg_type, self.public, nonce, now_ms, body]
        signature = self._key.sign(ENVELOPE_DOMAIN + canonical(head)).signature
        return canonical([*head, bytes(signature)])

    def result_sig(self, escrow: dict[str, Any], requester_address: bytes, job: bytes,
                   task: bytes, frame_number: int, frame_cid: str) -> bytes:  # fmt: skip
        """§8.4: the EIP-712 ``Result`` signature an escrowed job's result carries."""
        signable = _typed(escrow, "Result", {
            "requester": "0x" + requester_address.hex(), "jobId": job, "taskId": task,
            "frame": frame_number, "frameDigest": digest_of_cid(frame_cid)})  # fmt: skip
        return bytes(self._account.sign_message(signable).signature)

    def pass_sig(self, escrow: dict[str, Any], requester_address: bytes,
                 verdict: dict[str, Any], frame_cid: str) -> bytes:  # fmt: skip
        """§6.1, §8.4: ``verdict.pass_sig``, our EIP-712 ``Pass`` of a passing verdict."""
        signable = _pass(escrow, requester_address, verdict, frame_cid, self.address)
        return bytes(self._account.sign_message(signable).signature)

    def binding(self) -> dict[str, Any]:
        """§8.1: both keys sign; EIP-55 address with 0x; our own peer id."""
        text = f"Pictor: payment address {self._account.address} belongs to node {self.peer_id}"
        signed = self._account.sign_message(encode_defunct(text=text))
        return {
            "node": self.public,
            "address": self.address,
            "node_signature": bytes(self._key.sign(BIND_DOMAIN + self.address).signature),
            "address_signature": bytes(signed.signature),
        }


_EIP712_TYPES = {"requester": "address", "jobId": "bytes32", "checker": "address",
                 "taskId": "bytes32", "frame": "uint256", "frameDigest": "bytes32",
                 "tiles": "bytes32"}  # fmt: skip
VERDICT_DOMAIN = b"pictor/verdict/v1\x00"  # §6.1: a verdict's body digest
FRAUD_TILES_DOMAIN = b"pictor/fraud-tiles/v1\x00"  # §6.1, §8.4


def _typed(escrow: dict[str, Any], name: str, data: dict[str, Any]) -> Any:
    """§8.4: typed data in the escrow's domain, its fields in ``data``'s order."""
    return encode_typed_data(
        domain_data={"name": "Pictor Escrow", "version": "1", "chainId": escrow["chain_id"],
                     "verifyingContract": "0x" + escrow["contract"].hex()},
        message_types={name: [{"name": n, "type": _EIP712_TYPES[n]} for n in data]},
        message_data=data,
    )


def verdict_body_digest(verdict: dict[str, Any]) -> bytes:
    """§6.1: SHA-256 of the domain and the canonical verdict body with ``pass_sig`` nil."""
    return hashlib.sha256(VERDICT_DOMAIN + canonical({**verdict, "pass_sig": None})).digest()


def _pass(escrow: dict[str, Any], requester_address: bytes, verdict: dict[str, Any],
          frame_cid: str, checker: bytes) -> Any:  # fmt: skip
    """§8.4: the ``Pass`` of ``verdict`` naming ``checker``; ``tiles`` commits to the
    verdict's body digest alone."""
    tiles = hashlib.sha256(FRAUD_TILES_DOMAIN + verdict_body_digest(verdict)).digest()
    return _typed(escrow, "Pass", {
        "requester": "0x" + requester_address.hex(), "jobId": verdict["job_id"],
        "checker": "0x" + checker.hex(), "taskId": verdict["task_id"], "frame": verdict["frame"],
        "frameDigest": digest_of_cid(frame_cid), "tiles": tiles})  # fmt: skip


def pass_signed_by(escrow: dict[str, Any] | None, requester_address: bytes,
                   verdict: dict[str, Any], frame_cid: str, checker: bytes) -> bool:  # fmt: skip
    """§6.1: whether a requester takes ``verdict`` from the checker it assigned at payment
    address ``checker``: a rejection, or a job without escrow, needs no signature; a pass
    of an escrowed job needs ``pass_sig`` recovering to ``checker`` (low ``s``)."""
    if escrow is None or not verdict["passed"]:
        return True
    sig = verdict.get("pass_sig")
    if not isinstance(sig, bytes) or len(sig) != 65 or sig[64] not in (27, 28):
        return False
    if int.from_bytes(sig[32:64], "big") > SECP256K1_HALF_N:
        return False
    signable = _pass(escrow, requester_address, verdict, frame_cid, checker)
    try:
        signer = Account.recover_message(signable, signature=sig)
    except Exception:  # eth-account raises several types for bad bytes
        return False
    return bytes.fromhex(signer[2:]) == checker


SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def pass_claim_refusal(escrow: dict[str, Any], requester_address: bytes,
                       request: dict[str, Any], max_at_risk_wei: int) -> str:  # fmt: skip
    """§8.4 (``Fraud``): why a checker asked to sign a claim against another checker's
    pass (a ``fraud_sign_request`` with ``pass_verdict``) must refuse before it renders
    ("" when it may go on to re-render exactly the verdict's cells)."""
    verdict = request.get("pass_verdict")
    if not isinstance(verdict, dict) or not verdict["passed"] or not verdict["tiles"]:
        return "no passing verdict"
    names = ("job_id", "task_id", "frame")
    if any(verdict[n] != request[n] for n in names):
        return "a verdict about another frame"
    if list(request["verdict_digests"]) != [verdict_body_digest(verdict)]:
        return "the evidence is not the passing verdict alone"
    if not 0 < int.from_bytes(request["amount_wei"], "big") <= max_at_risk_wei:
        return "too much at risk"
    if not pass_signed_by(escrow, requester_address, verdict, request["frame_cid"],
                          request["worker_address"]):  # fmt: skip
        return "not the accused's pass of that frame"
    return ""


def open_envelope(data: bytes) -> Opened:
    """§4 steps 1-6 for the messages this client reads (no replay/skew bookkeeping)."""
    if len(data) > 262_144:
        raise Refused("oversize")
    items = msgpack.unpackb(data, raw=False, strict_map_key=True)
    _check_depth(items, 0)
    if canonical(items) != data:
        raise Refused("not canonical")
    if type(items) is not list or len(items) != 7 or items[0] != 1:
        raise Refused("not a v1 envelope")
    _version, msg_type, sender, nonce, ts, body, signature = items
    try:
        VerifyKey(sender).verify(ENVELOPE_DOMAIN + canonical(items[:6]), signature)
    except Exception as exc:
        raise Refused("bad signature") from exc
    return Opened(msg_type, sender, nonce, ts, body, hashlib.sha256(data).digest())


def _check_depth(value: object, depth: int) -> None:
    """§2: arrays and maps nest at most 8 deep."""
    if isinstance(value, list | dict):
        if depth >= 8:
            raise Refused("nested too deep")
        for child in value.values() if isinstance(value, dict) else value:
            _check_depth(child, depth + 1)


def check_binding(binding: dict[str, Any], sender: bytes) -> None:
    if binding["node"] != sender:
        raise Refused("binding for another node")
    VerifyKey(binding["node"]).verify(BIND_DOMAIN + binding["address"], binding["node_signature"])
    address_hex = binding["address"].hex()
    digest = keccak(address_hex.encode()).hex()
    eip55 = "0x" + "".join(
        c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(address_hex)
    )
    text = f"Pictor: payment address {eip55} belongs to node {peer_id(sender)}"
    signer = Account.recover_message(
        encode_defunct(text=text), signature=binding["address_signature"]
    )
    if signer != eip55:
        raise Refused("address did not sign the binding text")


def job_id(spec: dict[str, Any]) -> bytes:
    return hashlib.sha256(JOB_DOMAIN + canonical(spec)).digest()


def frame(payload: bytes) -> bytes:
    """§6: a 4-byte big-endian length, then the payload."""
    return struct.pack(">I", len(payload)) + payload


def cid_of(data: bytes) -> str:
    """§7: CIDv1, raw, sha2-256, base32 lower case without padding, prefix 'b'."""
    raw = b"\x01\x55\x12\x20" + hashlib.sha256(data).digest()
    return "b" + b32encode(raw).decode().lower().rstrip("=")


def manifest_of(data: bytes, chunk_bytes: int = 1 << 20) -> bytes:
    chunks = [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)]
    head = b"PICTMAN1" + hashlib.sha256(data).digest() + struct.pack(">QI", len(data), chunk_bytes)
    return head + b"".join(hashlib.sha256(c).digest() for c in chunks)


def parse_manifest(raw: bytes, cid: str) -> tuple[int, int, list[bytes]]:
    """(size, chunk size, chunk digests), checked as §7 requires."""
    if raw[:8] != b"PICTMAN1":
        raise Refused("not a manifest")
    digest = raw[8:40]
    size, chunk_bytes = struct.unpack(">QI", raw[40:52])
    count = -(-size // chunk_bytes)
    if cid_of_digest(digest) != cid or len(raw) != 52 + 32 * count:
        raise Refused("manifest does not match the CID")
    return size, chunk_bytes, [raw[52 + 32 * i : 84 + 32 * i] for i in range(count)]


def digest_of_cid(cid: str) -> bytes:
    """§7: the sha2-256 inside a CID of the one accepted form."""
    if not cid.startswith("b"):
        raise Refused("bad cid")
    text = cid[1:].upper()
    raw = b32decode(text + "=" * (-len(text) % 8))
    if raw[:4] != b"\x01\x55\x12\x20" or len(raw) != 36 or cid_of_digest(raw[4:]) != cid:
        raise Refused("bad cid")
    return raw[4:]


def cid_of_digest(digest: bytes) -> str:
    return "b" + b32encode(b"\x01\x55\x12\x20" + digest).decode().lower().rstrip("=")


def content_request_manifest(cid: str) -> bytes:
    return b"M" + cid.encode("ascii")


def content_request_chunk(cid: str, index: int) -> bytes:
    return b"C" + struct.pack(">I", index) + cid.encode("ascii")


def answer_content(request: bytes, blobs: dict[str, bytes]) -> bytes:
    """Serve §7 from a dict of CID -> content, with 1 MiB chunks."""
    kind, rest = request[:1], request[1:]
    if kind == b"C" and len(rest) > 4:
        (index,), rest = struct.unpack(">I", rest[:4]), rest[4:]
    cid = rest.decode("ascii", "replace")
    data = blobs.get(cid)
    if data is None:
        return b"\x01no content"
    if kind == b"M":
        return b"\x00" + manifest_of(data)
    if kind == b"C":
        chunk = data[index << 20 : (index + 1) << 20]
        return b"\x00" + chunk if chunk or (index == 0 and not data) else b"\x01out of range"
    return b"\x01bad request"


def sync_request(after_seq: int, limit: int = 256) -> bytes:
    """§7.1: [after_seq, limit] in canonical msgpack."""
    return canonical([after_seq, limit])


def canonical_unpack(data: bytes) -> Any:
    """Decode msgpack and refuse it unless it is canonical (§2)."""
    value = msgpack.unpackb(data, raw=False, strict_map_key=True)
    if canonical(value) != data:
        raise Refused("not canonical")
    return value


def parse_sync_page(data: bytes, after_seq: int) -> tuple[int, list[Opened]]:
    """§7.1: [last_seq, [envelope, ...]]; every envelope opened (signature checked)."""
    page = canonical_unpack(data)
    if type(page) is not list or len(page) != 2:
        raise Refused("not a sync page")
    last_seq, items = page
    if items and last_seq <= after_seq:
        raise Refused("the cursor did not advance")
    return last_seq, [open_envelope(item) for item in items]


def dht_network_key(chain_id: int) -> bytes:
    """§1: the rendezvous key whose providers are one settlement chain's nodes."""
    return hashlib.sha256(b"pictor/1/network/" + str(chain_id).encode()).digest()


def dht_peer_key(peer_id_bytes: bytes) -> bytes:
    """§1: the key a node provides its own addresses under."""
    return hashlib.sha256(b"pictor/1/peer/" + peer_id_bytes).digest()


TILES_DOMAIN = b"pictor/verify/tiles/v1\x00"  # §6.1, verify_request.tile_secret
TILE_SECRET_DOMAIN = b"pictor/verify/tile-secret/v1\x00"  # §6.1: the reference's draw


def select_tiles(
    result_digest: bytes, tile_secret: bytes, width: int, height: int, k: int, tile_px: int = 16
) -> list[tuple[int, int, int, int]]:
    """§6.1: the cells a checker re-renders, (x, y, width, height) sorted by (y, x)."""
    seed = hashlib.sha256(TILES_DOMAIN + result_digest + tile_secret).digest()
    columns, rows = -(-width // tile_px), -(-height // tile_px)
    cells = list(range(columns * rows))
    counter = 0

    def below(bound: int) -> int:
        nonlocal counter
        limit = 2**64 - 2**64 % bound
        while True:
            block = hashlib.sha256(seed + struct.pack(">Q", counter)).digest()
            counter += 1
            value = int.from_bytes(block[:8], "big")
            if value < limit:
                return value % bound

    picked = []
    for i in range(min(k, len(cells))):
        j = below(len(cells) - i)
        cells[i], cells[i + j] = cells[i + j], cells[i]
        picked.append(cells[i])
    out = []
    for n in picked:
        x, y = n % columns * tile_px, n // columns * tile_px
        out.append((x, y, min(tile_px, width - x), min(tile_px, height - y)))
    return sorted(out, key=lambda t: (t[1], t[0]))


def reference_tile_secret(
    check_secret: bytes, task_id: bytes, result_digest: bytes, checker: bytes, kind: int
) -> bytes:
    """§6.1: how the reference requester draws a request's tile_secret."""
    data = check_secret + task_id + result_digest + checker + bytes([kind])
    return hashlib.sha256(TILE_SECRET_DOMAIN + data).digest()


def verdict_follows(verdict: dict[str, Any], request: dict[str, Any], width: int,
                    height: int) -> bool:  # fmt: skip
    """§6.1: a verdict on exactly the cells its request's tile_secret selects."""
    if verdict["secret"] != request["tile_secret"]:
        return False
    want = select_tiles(request["result_digest"], request["tile_secret"], width, height,
                        request["tiles"])  # fmt: skip
    got = [(t["x"], t["y"], t["width"], t["height"]) for t in verdict["tiles"]]
    return got == want
