"""Open (issue 17, stop-26 review finding 3): a cheat's sybils answer a true claim.

The escrow cancels a claim for any ``Clean`` signed by more registered, staked checkers
than claimed it, and an answer risks nothing: the answerers lock no stake and nothing
can overturn an answer. So a cheat that runs ``quorum + 1`` staked checker identities
answers every true claim against it: it keeps its stake and takes half of what the
honest claimers locked (its sybils the other half). A larger quorum may claim the frame
again, but the sybils answer again, up to the escrow's 16 signers. This test is the
attack, on the real contract; it fails (xfail, strict) until answers can cost their
signers (docs/VERIFICATION.md, "Answers by the accused's sybils")."""

from __future__ import annotations

import pytest

from ledger.client import CLAIM_ANSWERED
from tests.ledger.conftest import CHECKER_MIN_STAKE_WEI, ETHER, SLASH_CAP_WEI, Env
from tests.ledger.test_stake_slash import (
    claim_for,
    open_claim,
    ordered,
    register,
    result_of,
    signed,
    staked_job,
)


@pytest.mark.xfail(strict=True, reason="open: an answer risks nothing (docs/VERIFICATION.md)")
def test_a_cheats_sybils_cannot_answer_a_true_claim_for_profit(env_fast: Env) -> None:
    env = env_fast
    cheat = env.workers[0]
    job_id = staked_job(env, cheat, 2 * ETHER)
    honest, sybils = env.checkers[:2], env.checkers[2:5]  # the sybils: the cheat's own keys
    register(honest)
    register(sybils)
    claim = claim_for(env, result_of(env, job_id), cheat, SLASH_CAP_WEI)  # a true claim
    open_claim(env, claim, honest)
    answer = claim.answer
    env.outsider.send(env.outsider.calls.answer_claim(answer, ordered(honest),
                                                      signed(env, answer, sybils)))  # fmt: skip
    assert env.outsider.claim(claim.ref, cheat.account).status == CLAIM_ANSWERED
    # What should hold: the claimers were right, so they lose nothing and the cheat gains
    # nothing. Today each claimer lost the cap to the cheat and its sybils.
    for c in honest:
        assert c.stake_of().active_wei == CHECKER_MIN_STAKE_WEI
    gained = cheat.credit_wei(cheat.account) + sum(s.credit_wei(s.account) for s in sybils)
    assert gained == 0
