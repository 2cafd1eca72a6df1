"""Test-only misbehaviour (``adversary=...`` in the node config); never on by default.

``clawback`` (a requester) is below. ``false-reject`` (a checker) rejects every
result it checks, honest or not, with tile evidence that looks like a mismatch
(low PSNR, large differences): the lie a dispute exists to overturn (issue 16;
tests/e2e/test_dispute.py). ``lazy`` (a checker) answers every check "passed"
without rendering (:func:`lazy_verdict`): the verifier's dilemma that forced
errors exist to catch (issue 17). ``wrong-seed`` (a worker) is in
node/roles/worker.py.

The clawback is the attack lanes exist to stop (issue 13): once the first
frame is paid, the requester moves every unallocated wei of the job into a
lane of its own second address (a sock puppet), signs that address a voucher
for everything the escrow still holds for the job, and redeems it before it
sends the worker its voucher. On the old escrow this emptied the job and the
worker's voucher reverted "over budget"; with lanes it takes only what no
payee's lane holds, and the honest worker is still paid in full.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from eth_account import Account

from ledger.errors import LedgerError
from ledger.vouchers import sign
from node.log import log_event
from node.verify.images import ImageError, load_image
from protocol.messages import JobSpec, TileEvidence, Verdict, VerifyRequest, Voucher
from protocol.verification import (
    DEFAULT_POLICY,
    PSNR_IDENTICAL_MILLIDB,
    TileCheck,
    build_verdict,
    select_tiles,
    tile_digest,
)

if TYPE_CHECKING:
    from pathlib import Path

    from node.roles.requester_job import RequesterJob

logger = logging.getLogger(__name__)


FALSE_REJECT = "false-reject"
LIE_PSNR_MILLIDB = 21_000  # where the measured cheats sit (28–38 dB), and lower


def false_reject(verdict: Verdict) -> Verdict:
    """The verdict a lying checker signs instead of ``verdict``: a rejection."""
    tiles = tuple(replace(t, psnr_millidb=min(t.psnr_millidb, LIE_PSNR_MILLIDB), max_abs_diff=255)
                  for t in verdict.tiles)  # fmt: skip
    return replace(verdict, passed=False, tiles=tiles)


@dataclass(frozen=True)
class Clawback:
    """A marker in a requester job's send queue: claw back before the next send."""


def sock_puppet(payment_key: bytes) -> bytes:
    """The requester's second payment address (derived from its key)."""
    key = hashlib.sha256(payment_key + b"pictor/sock-puppet").digest()
    return bytes.fromhex(Account.from_key(key).address[2:])


async def claw_back(job: RequesterJob) -> None:
    chain = job.ctx.chain
    assert chain is not None
    sock = sock_puppet(job.ctx.payment_key)
    try:
        state = await chain.job(job.job_id)
        if state.unallocated_wei > 0:
            await chain.open_lanes(job.job_id, [(sock, state.unallocated_wei)])
        unsigned = Voucher(chain.chain_id, chain.contract, chain.address, job.job_id, sock,
                           state.remaining_wei)  # fmt: skip
        await chain.redeem([sign(unsigned, job.ctx.payment_key)])
        log_event(logger, logging.WARNING, "clawback redeemed", job=job.job_id.hex()[:16],
                  voucher_wei=state.remaining_wei)  # fmt: skip
    except LedgerError as exc:
        log_event(logger, logging.WARNING, "clawback refused", error=str(exc)[:200])


async def lazy_verdict(request: VerifyRequest, frame: Path, spec: JobSpec) -> Verdict:
    """``lazy`` (a checker): the verifier's dilemma played. It renders nothing and
    passes every frame, with the most plausible verdict it can make without
    rendering: the tiles the request's secret selects (the requester refuses any
    other), each "identical", and as its commitment the digests of the worker's own
    tiles (what an honest re-render of an honest frame would hash to). The checker
    role signs its pass as any other (``Verdict.pass_sig``): a real lazy checker signs
    too, since the requester refuses an unsigned pass, so each pass it is paid for is
    claimable. Forced errors catch it (protocol.forced_errors)."""
    secret = request.tile_secret
    settings = spec.settings
    tiles = select_tiles(request.result_digest, secret, settings.resolution_x,
                         settings.resolution_y, request.tiles, DEFAULT_POLICY.sampling.tile_px)  # fmt: skip
    try:
        image = load_image(frame)
    except ImageError:
        image = None
    checks = []
    for t in tiles:
        cut = None if image is None else image[t.y : t.y + t.height, t.x : t.x + t.width]
        evidence = TileEvidence(t.x, t.y, t.width, t.height, PSNR_IDENTICAL_MILLIDB, 0)
        checks.append(TileCheck(evidence, True, bytes(32) if cut is None else tile_digest(cut)))
    return build_verdict(request, checks=checks,
                         checker_build=spec.renderer_build, checker_device_class="cpu")  # fmt: skip
