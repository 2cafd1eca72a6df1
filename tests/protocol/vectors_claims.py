"""EIP-712 result, fraud, rung and pass signatures for ``docs/vectors/claims.json`` (see ``vectors_gen``).

The same objects the sample ``result``, ``fraud_signed`` and ``clean_signed``
envelopes carry (``vectors_samples.sample_messages``), signed by ``ledger.fraud``:
so a second implementation can check its typed-data hashing step by step and
then find the very signatures inside ``envelopes.json`` (docs/PROTOCOL.md §8.4).
``Pass`` is the sample ``verdict`` envelope's ``pass_sig``: its ``tiles`` commit to
that verdict's body digest (taken with ``pass_sig`` cleared), given as
``pass_verdict_digest``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from eth_utils.crypto import keccak

from ledger import fraud
from node.content.cid import cid_of_bytes
from protocol.identity import address_text
from protocol.market.records import verdict_digest_of
from protocol.messages import job_id_of
from protocol.slashing import TILES_DOMAIN, tiles_commitment
from tests.protocol.vectors_samples import (
    BOB,
    CAROL,
    SAMPLE_CLAIMERS,
    SAMPLE_FRAME_CID_BYTES,
    SAMPLE_RESULT_DIGEST,
    sample_spec,
    sample_verdict,
    sample_vote,
    task_id_of,
)

RESULT_TYPE = (
    "Result(address requester,bytes32 jobId,bytes32 taskId,uint256 frame,bytes32 frameDigest)"
)
RUNG_TYPE = "Rung(bytes32 claimId,bytes32 commit,uint256 rung)"
PASS_TYPE = (
    "Pass(address requester,bytes32 jobId,address checker,bytes32 taskId,uint256 frame,"
    "bytes32 frameDigest,bytes32 tiles)"
)
FRAUD_TYPE = (
    "Fraud(address requester,bytes32 jobId,address worker,bytes32 taskId,uint256 frame,"
    "bytes32 frameDigest,bytes32 tiles,uint256 amount,uint256 round)"
)


def _vector(
    name: str, type_text: str, message: fraud.Message, key: bytes, fields: dict[str, Any]
) -> dict[str, Any]:
    signable = fraud.signable(message)
    signature = fraud.sign(message, key)
    digest = keccak(b"\x19\x01" + bytes(signable.header) + bytes(signable.body))
    signer = fraud.recover(message, signature)
    return {
        "name": name,
        "type": type_text,
        "typehash": keccak(type_text.encode()).hex(),
        "message": fields,
        "domain_separator": bytes(signable.header).hex(),
        "struct_hash": bytes(signable.body).hex(),
        "digest": digest.hex(),
        "signer": address_text(signer),
        "signature": signature.hex(),
    }


def claim_vectors() -> dict[str, Any]:
    spec = sample_spec()
    job = job_id_of(spec)
    task = task_id_of(job, 1)
    frame_cid = cid_of_bytes(SAMPLE_FRAME_CID_BYTES)
    verdict_digest = hashlib.sha256(b"stand-in for the verdict envelope's bytes").digest()
    ref = fraud.result_ref(spec, job, task, 1, frame_cid)
    assert ref is not None
    tiles = tiles_commitment([verdict_digest])
    claim = fraud.FraudClaim(ref, BOB.address, tiles, 10**17)
    base = {
        "requester": address_text(ref.requester),
        "jobId": job.hex(),
        "taskId": task.hex(),
        "frame": 1,
        "frameDigest": ref.frame_digest.hex(),
    }
    with_worker = {  # in the type's field order
        "requester": base["requester"], "jobId": base["jobId"],
        "worker": address_text(BOB.address), "taskId": base["taskId"], "frame": 1,
        "frameDigest": base["frameDigest"], "tiles": tiles.hex(),
    }  # fmt: skip
    verdict = sample_verdict(spec, SAMPLE_RESULT_DIGEST, frame_cid)
    pass_digest = verdict_digest_of(verdict)
    vote = sample_vote(spec, job, task, frame_cid, verdict_digest)
    claim_id = fraud.claim_id(ref, BOB.address)
    commit = fraud.claim_commit(ref.frame_digest, tiles, SAMPLE_CLAIMERS)
    checker_pass = fraud.checker_pass(spec, verdict, frame_cid, CAROL.address)
    assert checker_pass is not None and checker_pass.ref == ref
    pass_tiles = tiles_commitment([pass_digest])
    with_checker = {  # Pass: the checker (the signer) in the worker's place, its own tiles
        ("checker" if k == "worker" else k): address_text(CAROL.address) if k == "worker" else v
        for k, v in with_worker.items()
    } | {"tiles": pass_tiles.hex()}
    passed = _vector("pass", PASS_TYPE, checker_pass, CAROL.payment_key, with_checker)
    assert passed["signature"] == (verdict.pass_sig or b"").hex()  # the envelope's
    return {
        "comment": "EIP-712 typed data in the escrow's domain (the vouchers'): Result is signed "
        "by the worker's payment key (result.result_sig), Fraud and Rung by checkers "
        "(fraud_signed / clean_signed.signature). The signatures are the ones in envelopes.json. "
        "frameDigest is the sha2-256 inside frame_cid; tiles = SHA-256(tiles_domain || sorted "
        "verdict body digests); amount is decimal text; round (0 here: a frame's first claim) the size of the answer that ended the frame's last claim. Pass is signed by a checker over the "
        "frame it passed and is the sample verdict's pass_sig: its tiles = SHA-256(tiles_domain "
        "|| pass_verdict_digest), the body digest of that verdict with pass_sig nil. Rung is "
        "rung 0 (the answer) of the ladder of the claim on this result by `claimers`: claim_id "
        "= keccak256(abi_encode(requester, jobId, worker, taskId, frame)), commit = "
        "keccak256(abi_encode(frameDigest, tiles, claimers as address[])).",
        "chain_id": ref.chain_id,
        "verifying_contract": address_text(ref.contract),
        "frame_cid": frame_cid,
        "tiles_domain": TILES_DOMAIN.hex(),
        "verdict_digests": [verdict_digest.hex()],
        "tiles": tiles.hex(),
        "pass_verdict_digest": pass_digest.hex(),
        "claimers": [address_text(a) for a in SAMPLE_CLAIMERS],
        "claim_id": claim_id.hex(),
        "commit": commit.hex(),
        "vectors": [
            _vector("result", RESULT_TYPE, ref, BOB.payment_key, base),
            _vector("fraud", FRAUD_TYPE, claim, CAROL.payment_key,
                    {**with_worker, "amount": str(claim.amount_wei), "round": 0}),
            _vector("rung", RUNG_TYPE, vote, CAROL.payment_key,
                    {"claimId": claim_id.hex(), "commit": commit.hex(), "rung": 0}),
            passed,
        ],
    }
