"""Issue 17: a worker signs its results with its payment key; an unsigned one is refused.

Real roles over loopback with the fake chain: the honest worker's results
carry ``result_sig`` (checked by the requester's machine through
``ledger.fraud.result_signer``), a worker that leaves it out (adversary
"unsigned-result") has every result refused as a failed attempt, before any
checker is paid for it, and is never paid.
"""

from __future__ import annotations

from pathlib import Path

import trio

from ledger.fraud import result_signer
from protocol.envelope import decode_envelope
from protocol.messages import Result
from tests.roles.cluster import open_cluster
from tests.roles.test_job_flow import all_paid


async def test_signed_results_are_taken_and_unsigned_ones_refused(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client")
        unsigned = await cluster.add("w1", "worker", adversary="unsigned-result")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=3)
        job = cluster.members["client"].live().requester.jobs[job_id]
        while not job.view.blocklisted:  # three refused results blocklist it
            await job.wait_changed()
        assert job.view.blocklisted == {unsigned.key.node_id.raw.hex()}
        assert job.view.accepted == {}
        honest = await cluster.add("w2", "worker")
        await job.done.wait()
        assert job.view.outcome == "completed"
        owed = await all_paid(cluster, "client", job_id)
        assert unsigned.address not in owed and honest.address in owed
        assert cluster.escrow.paid_to(unsigned.address) == 0
        # The results the requester kept (its evidence) are signed by the payee's key.
        for wire in job.results.values():
            result = decode_envelope(wire).message
            assert isinstance(result, Result)
            if result.result_sig is None:
                assert result_signer(job.spec, result) is None
            else:
                assert result_signer(job.spec, result) == honest.address
        assert len(job.results) == 6  # three refused, three taken
