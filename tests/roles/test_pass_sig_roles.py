"""Real nodes and signed passes (issue 17): an honest checker signs every pass of an
escrowed job with its payment key (``Verdict.pass_sig``); checkers that leave the
signature out, sign with another key or sign other tiles (what a lazy checker would
do rather than make its pass claimable) have their passes refused and scored, are
never paid, and the job completes on the honest checker's signed passes."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import trio
from eth_account import Account
from PIL import Image

from ledger.fraud import pass_signer, sign_pass
from node.roles import checker as checker_module
from node.roles import plants as requester_plants
from protocol.messages import JobSpec, Verdict
from tests.roles.cluster import Member, open_cluster
from tests.roles.test_job_flow import all_paid
from tests.roles.test_tile_secret_roles import refusals

Forgery = Callable[[JobSpec, Verdict, str, bytes], bytes | None]
OTHER_KEY = bytes(Account.create().key)
FORGERIES: dict[str, Forgery] = {
    "unsigned": lambda spec, verdict, cid, key: None,
    "another key": lambda spec, verdict, cid, key: sign_pass(spec, verdict, cid, OTHER_KEY),
    "other tiles": lambda spec, verdict, cid, key: sign_pass(
        spec, replace(verdict, tile_digests=tuple(bytes(32) for _ in verdict.tile_digests)),
        cid, key,
    ),
}


async def test_checkers_whose_passes_are_not_signed_by_them_are_refused_and_the_job_completes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forgers: dict[bytes, Forgery] = {}  # payment address -> how it signs
    used: dict[bytes, int] = {}
    signed: list[tuple[JobSpec, Verdict, str]] = []  # the honest checker's passes

    def signing(spec: JobSpec, verdict: Verdict, frame_cid: str, key: bytes) -> bytes | None:
        address = bytes.fromhex(Account.from_key(key).address[2:])
        if (forge := forgers.get(address)) is not None and verdict.passed:
            used[address] = used.get(address, 0) + 1
            return forge(spec, verdict, frame_cid, key)
        sig = sign_pass(spec, verdict, frame_cid, key)
        if sig is not None:
            signed.append((spec, replace(verdict, pass_sig=sig), frame_cid))
        return sig

    def recoded(path: Path) -> bytes:
        """The requester's copy for checkers, with bytes (and a CID) of its own, as a
        real render's re-encoding has (the fake worker already writes the canonical
        encoding): a pass must name the copy its checker was sent."""
        out = io.BytesIO()
        Image.open(path).save(out, format="PNG", compress_level=1)
        return out.getvalue()

    monkeypatch.setattr(checker_module, "sign_pass", signing)
    monkeypatch.setattr(requester_plants, "canonical_png", recoded)
    async with open_cluster(tmp_path) as cluster:
        # no plants: a forger renders honestly, and its rejection of a plant is paid
        client = await cluster.add("client", "client", plant_rate_ppm=0)
        await cluster.add("w1", "worker")
        bad: list[Member] = []
        for name, forge in FORGERIES.items():
            member = await cluster.add(name.replace(" ", "-"), "checker")
            forgers[member.address] = forge
            bad.append(member)
        honest = await cluster.add("c1", "checker")
        await cluster.settle("client", 5)
        job_id = await cluster.submit("client", frames=4)
        job = client.live().requester.jobs[job_id]
        assert job.spec.escrow is not None  # a pass is claimable only with an escrow
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert used  # the requester asked forging checkers, and they forged
        owed = await all_paid(cluster, "client", job_id)
        total = 0
        for member in bad:
            # each forged pass that reached the requester was refused and scored (50
            # points; two close together ban it, and its later verdicts go nowhere); a
            # forger is never paid (only passes are forged, and all are refused)
            refused = refusals(member, client)
            assert set(refused) <= {"illegal_message"}
            assert refused.get("illegal_message", 0) <= used.get(member.address, 0)
            total += refused.get("illegal_message", 0)
            assert owed.get(member.address, 0) == 0
        assert total >= 1
        assert not refusals(honest, client)
        assert owed[honest.address] > 0
        # the honest passes name the copies served and recover to the honest checker
        copies = job.frames.canonical
        assert copies and all(copy != cid for cid, copy in copies.items())
        assert signed and all(
            cid in copies.values() and pass_signer(spec, verdict, cid, honest.address)
            == honest.address for spec, verdict, cid in signed
        )  # fmt: skip
