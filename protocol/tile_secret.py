"""The requester's tile secret: who chooses the cells a checker re-renders.

Theory of operation
-------------------
A check re-renders the cells :func:`protocol.verification.select_tiles` picks from
``(result_digest, secret)``. Whoever picks the secret after seeing the result
could try secrets until the cells miss what it wants missed: a checker
colluding with a worker that faked part of a frame could redraw until every
cell lands on the honest part, render those honestly and sign a consistent,
passing verdict that no later re-render of its tiles contradicts. So the
checker does not choose: the requester draws the secret (:func:`request_tile_secret`)
and sends it in ``VerifyRequest.tile_secret``; the checker MUST select its tiles
from it and reveal it in ``Verdict.secret``, and the requester refuses a verdict
whose secret is not the one it sent, or whose tiles are not exactly the ones that
secret selects (:func:`verdict_draw_refusal`).

*Unknown to the worker until it signed.* The secret is derived from the job's
``check_secret`` (never sent; the worker cannot compute it) and from the signed
result's digest, and the requester sends it only with the check, after the
Result arrived. A worker that learnt one request's secret (from a colluding
checker) learns nothing about any other result's.

*Deterministic, one per request.* A replay of the requester's journal derives
the same secrets (and so accepts the same verdicts). Each (task, result,
checker, kind) has its own: the real check, a plant (:class:`CheckKind`), each
dispute checker, and two checkers of one task never share one. The same checker
asked again about the same result (after a verify timeout) gets the same secret,
on purpose: a fresh one per attempt would let a checker redraw by letting its
requests time out until one suited it.

*Still public afterwards.* ``Verdict.secret`` is the tile secret, so anyone holding
the verdict recomputes its tiles (:func:`protocol.verification.audit_verdict`), as
before. What a third party cannot see from the verdict alone is that the secret
was the requester's: the requester's own acceptance vouches for that.

A requester machine without a ``check_secret`` (tests, which check every result)
derives from 32 zero bytes: its draws are public, so real drivers always pass one.
"""

from __future__ import annotations

import enum
import hashlib

from protocol.errors import LocalProtocolError
from protocol.messages import Verdict
from protocol.verification import draw_includes, tiles_drawn

TILE_SECRET_DOMAIN = b"pictor/verify/tile-secret/v1\x00"
NO_CHECK_SECRET = bytes(32)  # a machine without one: public draws (tests only)


class CheckKind(enum.IntEnum):
    """Why the requester asks a checker: each kind draws its own tile secret."""

    CHECK = 0  # the check plan's check of a result (each checker of a multi-checker plan)
    PLANT = 1  # a forced error (protocol.forced_errors): must look like a CHECK
    DISPUTE = 2  # a checker asked by a worker's dispute


def request_tile_secret(
    check_secret: bytes | None,
    task_id: bytes,
    result_digest: bytes,
    checker: bytes,
    kind: CheckKind,
) -> bytes:
    """The ``VerifyRequest.tile_secret`` a requester sends ``checker`` about this
    result: ``SHA-256(TILE_SECRET_DOMAIN || check_secret || task_id || result_digest
    || checker || kind)``, every part fixed-length (kind one byte)."""
    secret = NO_CHECK_SECRET if check_secret is None else check_secret
    if len(secret) != 32 or len(task_id) != 32 or len(result_digest) != 32:
        raise LocalProtocolError("check_secret, task_id and result_digest must be 32 bytes")
    if len(checker) != 32:
        raise LocalProtocolError("checker must be a 32-byte node id")
    material = secret + task_id + result_digest + checker + bytes([CheckKind(kind)])
    return hashlib.sha256(TILE_SECRET_DOMAIN + material).digest()


AIM_DOMAIN = b"pictor/verify/aimed-secret/v1\x00"
AIM_ROUNDS = 16  # tries: AIM_ROUNDS draws' worth of cells (a miss: about e^-16)
AIM_MAX_TRIES = 1 << 15  # and never more: the requester's loop stays responsive


def aimed_tile_secret(
    secret: bytes, result_digest: bytes, width: int, height: int, k: int, tile_px: int,
    cell: int,
) -> bytes:  # fmt: skip
    """A dispute checker's tile secret aimed at grid cell ``cell`` (the rejecting verdict's
    worst tile): the first of ``secret``, then ``SHA-256(AIM_DOMAIN || secret || i as u32
    big-endian)`` for i = 1, 2, ... whose draw (:func:`protocol.verification.select_tiles`)
    picks ``cell``; ``secret`` itself after ``min(AIM_ROUNDS * ceil(cells / min(k, cells)),
    AIM_MAX_TRIES)`` tries without one (a draw picks a given cell with chance k/cells: the
    cap leaves a frame of 16,384² cells at k = 8 unaimed about 3 times in 5, and bounds
    the search at about 0.3 s of Python there; review of stop 39).

    Why: a dispute asks whether the rejected result is what the scene renders, and the
    rejecter named where it is not. On a random draw an honest dispute checker missed a
    partial fake the rejecter had found (24 tiles miss a tenth of the frame 8 % of the
    time), and with a colluder in the other seat the cheat's rejection was overturned
    (the "overturned" misses, docs/VERIFICATION.md). Re-rendering the cell the rejecter
    named answers for that cell exactly: a fake there is found, a lie about it is seen.
    The draw's other cells stay random, and the secret is still the requester's
    (deterministic: a replay derives the same). A dispute checker that reads the public
    rejecting verdict can see its draw holds that cell, and nothing more. The rejecter
    chooses the cell (its worst); a liar may name one that measures poorly across
    device classes, which the comparison's margin must absorb (docs/VERIFICATION.md)."""
    cells = -(-width // tile_px) * -(-height // tile_px)
    if not 0 <= cell < cells or k < 1:
        return secret
    for i in range(min(AIM_ROUNDS * -(-cells // min(k, cells)), AIM_MAX_TRIES)):
        candidate = (
            hashlib.sha256(AIM_DOMAIN + secret + i.to_bytes(4, "big")).digest() if i else secret
        )
        if draw_includes(result_digest, candidate, width, height, k, tile_px, cell):
            return candidate
    return secret


def verdict_draw_refusal(
    verdict: Verdict, tile_secret: bytes, width: int, height: int, k: int, tile_px: int
) -> str | None:
    """Why ``verdict`` does not follow the tile draw its request fixed, or None.

    Its secret must be ``tile_secret`` and its tiles exactly the ``min(k, cells)``
    cells that secret selects for the verdict's result, in order. (A checker that
    ignores the request's secret, as a checker built before the field did, is
    refused here: nothing it rendered with its own draw can be told from a grind.)"""
    if verdict.secret != tile_secret:
        return "a verdict whose tile secret is not the one its request sent"
    if not tiles_drawn(verdict, tile_secret, width, height, k, tile_px):
        return "a verdict on other tiles than its request's secret selects"
    return None
