"""Issue 16: a dispute across processes on a devnet with four checkers.

``checker1`` runs the test-only adversary ``false-reject`` (node/roles/
adversary.py): it rejects every result it checks with tile evidence that
looks like a mismatch. The requester gives each checker its share
(``protocol.verification.choose_checker``: fewest checks first), so the liar
checks one of the worker's three frames; the worker's machine disputes the
rejection, the requester asks the two other checkers, both pass the result,
and the majority overturns the rejection. Then, on real processes, anvil and
Blender: the frame is accepted and the worker paid on chain for every frame;
the public work record — read from the store of a node that only heard it on
gossip — holds the requester's DisputeRecord, and from it the worker has no
strike while the liar has one overruled rejection; the explorer's indexer,
fed those same envelopes, shows the rejection overruled, the dispute and the
frame accepted.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from explorer import queries
from explorer.indexer.db import Tx, open_index
from explorer.indexer.rows import apply_message
from node.devnet.network import LocalDevnet
from protocol import NodeId, decode_envelope
from protocol.envelope import Envelope
from protocol.messages import DisputeRecord, JobAnnounce, JobClosed, WorkRecord
from protocol.record import RecordBook
from tests.e2e.conftest import JOB_TIMEOUT_S, needs_stack, submit, wait_paid

pytestmark = [
    pytest.mark.slow,
    needs_stack,
    # Skipped for a stop as flaky: one full run in three saw no DisputeRecord. The cause was
    # the requester's checker rotation (turned by every poll of a wait, so the liar was
    # sometimes never asked and no dispute happened); choose_checker fixed it.
]
# Plants off at the requester (plant_rate_ppm 0; tests/e2e/test_lazy_checker.py runs them).
# With plants on, this test failed 2 of 12 CI runs of stop 43 the same way: no dispute. The
# requester's journal of passing local runs showed why: a checker holds one of our
# requests at a time (MarketConfig.checks_per_checker) and a plant's checker is barred from
# the plant's result, so a liar drawn for the first plant was busy while the other three
# took the first checks, and it got a real check only when its plant verdict came back
# before the last check went out (0.2 s ahead in one of five runs; three of five drew it a
# plant first). Slower under CI's load, it checked nothing real: no rejection, no dispute.
# Without plants the liar holds nothing, has had the fewest checks, and is barred from no
# result, so it takes a first check, or the first second check that goes out.
NO_PLANTS = {"client": {"plant_rate_ppm": 0}}
FRAMES = 3  # one per checker: the liar is asked about one of them
RECORD_TIMEOUT_S = 60.0


def stored_record(net: LocalDevnet, name: str) -> list[Envelope]:
    """The public record as node ``name`` persisted it (its store, read-only)."""
    db = net.nodes[name].data_dir / "node.sqlite3"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT envelope FROM work_record ORDER BY seq").fetchall()
    return [decode_envelope(bytes(r[0])) for r in rows]


def wait_record(net: LocalDevnet, name: str, job_id: bytes) -> list[Envelope]:
    """Poll ``name``'s store (bounded) until it holds the job's closure and a dispute for
    every rejection (the liar may reject twice; a dispute can end after the job closed)."""
    deadline = time.monotonic() + RECORD_TIMEOUT_S
    while True:
        envs = [e for e in stored_record(net, name) if getattr(e.message, "job_id", b"") == job_id]
        kinds = {type(e.message) for e in envs}
        rejections = sum(isinstance(e.message, WorkRecord) and not e.message.accepted for e in envs)
        disputes = sum(isinstance(e.message, DisputeRecord) for e in envs)
        if {DisputeRecord, JobClosed} <= kinds and disputes >= rejections:
            return envs
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}'s record of the job: {sorted(k.__name__ for k in kinds)}, "
                               f"{rejections} rejection(s), {disputes} dispute(s); "
                               f"{what_the_nodes_logged(net)}")  # fmt: skip
        time.sleep(0.2)


def what_the_nodes_logged(net: LocalDevnet) -> str:
    """The lines of the requester's and the liar's logs that say whether the liar was
    asked and what it answered: this test failed twice in stop 43's CI (2 of 8 runs),
    with no dispute in the record, and could not be reproduced locally (8 of 8 passed)."""
    wanted = ("verif", "reject", "disput", "stake", "silent", "timeout", "timed out", "error")
    out = []
    for name in ("client", "checker1"):
        log = net.nodes[name].data_dir / "node.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        hits = [ln[:200] for ln in lines if any(w in ln.lower() for w in wanted)]
        out.append(f"{name}: {len(lines)} lines, last of {len(hits)} matching: {hits[-15:]}")
    return " | ".join(out)


def book_of(envs: list[Envelope]) -> RecordBook:
    book = RecordBook()
    for env in envs:
        m = env.message
        if isinstance(m, JobAnnounce):
            book.learn_job(m, env.sender.raw)
        elif isinstance(m, WorkRecord):
            book.add(env, env.timestamp_ms, rate_limited=False)
        elif isinstance(m, DisputeRecord):
            book.dispute(env)
        elif isinstance(m, JobClosed):
            book.close(env, env.timestamp_ms)
    return book


async def explorer_view(db_url: str, envs: list[Envelope], job_hex: str, liar: str) -> Any:
    async with open_index(db_url, readers=1) as index:

        def write(tx: Tx) -> int:
            return sum(apply_message(tx, e, e.timestamp_ms) for e in envs)

        await index.write(write)
        s = queries.ReadSettings()
        now_ms = max(e.timestamp_ms for e in envs)
        job = await index.read(lambda tx: queries.job(tx, job_hex, now_ms, s))
        checkers = await index.read(lambda tx: queries.checkers(tx, s))
        liar_node = await index.read(lambda tx: queries.node(tx, liar, now_ms, s))
        return job, checkers, liar_node


def test_a_lying_checker_is_overruled_and_the_worker_paid(
    devnet_factory: Any, scene: Path, tmp_path: Path
) -> None:
    # Four checkers: a fresh worker's result meets two at normal (stop 37), and a rejection
    # at the second check wants two more for its dispute. With three the dispute seats the
    # first check's passer after CHECKER_WAIT_MS (30 s: the fallback seat, stop 38;
    # tests/roles/test_slashing.py -k liar runs that case): four keep this test quick.
    net = devnet_factory(workers=1, checkers=4, adversaries={"checker1": "false-reject"},
                         node_settings=NO_PLANTS)  # fmt: skip
    client = net.api("client")
    job_id = submit(client, scene, tmp_path / "out", FRAMES)
    job = client.wait_job(job_id, JOB_TIMEOUT_S)
    assert job["outcome"] == "completed", job
    assert sorted(job["accepted"]) == [str(f) for f in range(1, FRAMES + 1)]
    wait_paid(net, ["worker1", "checker1", "checker2", "checker3", "checker4"], job["spent_wei"])
    worker_paid = net.api("worker1").get("/v1/roles")["payee"]["paid_wei"]
    assert worker_paid == sum(int(i["price_wei"]) for i in job["accepted"].values()) > 0

    # The public record, as a node that was neither requester nor liar kept it from gossip.
    envs = wait_record(net, "checker3", bytes.fromhex(job_id))
    worker, liar = (NodeId.from_text(net.nodes[n].node_id).raw for n in ("worker1", "checker1"))
    book = book_of(envs)
    # One dispute: once overruled, the liar is asked nothing more in this job
    # (JobMachine.checkers_barred); two only if it held two checks at once.
    disputes = [e.message for e in envs if isinstance(e.message, DisputeRecord)]
    assert disputes and all(len(d.verdicts) == 2 for d in disputes)
    for d in disputes:
        rejected = book.tasks[d.task_id]
        assert rejected.checker == liar and not rejected.passed and book.overturned(rejected)
    assert book.checker_history(liar).overruled == len(disputes)
    history = book.history(worker, max(e.timestamp_ms for e in envs))
    recorded = len(book.tasks_of(worker))
    assert (history.accepted, history.rejected) == (recorded - len(disputes), 0)  # struck: neither

    view, checkers, liar_node = trio.run(
        explorer_view, f"sqlite:///{tmp_path / 'index.sqlite3'}", envs, job_id,
        net.nodes["checker1"].node_id,
    )  # fmt: skip
    liar_id = net.nodes["checker1"].node_id
    assert view["status"] == "done"
    assert [f["state"] for f in view["frames"]] == ["accepted"] * FRAMES
    overruled = [v["checker"] for v in view["verdicts"] if v["overruled"]]
    assert overruled == [liar_id] * len(disputes)
    assert [d["reason"] for d in view["disputes"]] == ["overturned"] * len(disputes)
    assert {c["node_id"]: c["overruled"] for c in checkers}[liar_id] == len(disputes)
    assert liar_node is not None and liar_node["verdicts_overruled"] == len(disputes)
