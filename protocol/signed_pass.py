"""A checker's signed pass: when the requester refuses a passing verdict for its signature.

Theory of operation
-------------------
A checker that passes a result of an escrowed job signs the EIP-712 ``Pass``
(``ledger.fraud.checker_pass``) with its payment key and sends the signature in
``Verdict.pass_sig``. The ``Pass`` names the checker's payment address and the
judged frame, the one its request named (a plant's, for a plant; the node serves
a real check its own copy of the worker's frame: ``VerifyDesk.assign_checker``'s
``frame_cid``), and its ``tiles`` commit to the verdict's
body digest (``protocol.market.records.verdict_digest_of``, taken with
``pass_sig`` cleared): the verdict is the claim's published evidence. With it a
staked quorum that re-renders the checker's own tiles can take the checker's
stake for a pass of a wrong frame (``Escrow.claim_pass``); without it a lazy
checker risks nothing but the fee. So the requester takes no passing verdict of
an escrowed job without a signature that recovers to the payment address the
checker was assigned under: it is refused like a verdict off the tile draw
(``protocol.tile_secret``), scored, unpaid, and the check asked again after the
verify timeout. A rejection needs no signature, nor does a job without escrow
(nothing could be claimed). The recovery is the driver's crypto, injected as a
:data:`PassSigner` (``ledger.fraud.pass_signer``): this module stays pure.
"""

from __future__ import annotations

from collections.abc import Callable

from protocol.messages import JobSpec, Verdict

# (verdict, the judged frame's CID, the checker's assigned payment address) -> the
# address that signed verdict.pass_sig as that checker's Pass, None if none did
PassSigner = Callable[[Verdict, str, bytes], bytes | None]


def unsigned_pass_refusal(
    spec: JobSpec, verdict: Verdict, frame_cid: str, checker_address: bytes | None,
    signer: PassSigner | None,
) -> str | None:  # fmt: skip
    """Why the requester refuses ``verdict`` for its pass signature, or None. ``signer``
    None (a driver without the crypto, the simulator) checks nothing."""
    if signer is None or spec.escrow is None or not verdict.passed:
        return None
    if checker_address is None or signer(verdict, frame_cid, checker_address) != checker_address:
        return "a passing verdict not signed (pass_sig) by the checker's payment key"
    return None
