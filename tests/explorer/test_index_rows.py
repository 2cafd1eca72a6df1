"""The pure indexing step: envelopes and chain events to rows, idempotent, forward-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from explorer import queries
from explorer.indexer.db import DatabaseUrlError, DbTarget, IndexDb, open_index
from explorer.indexer.rows import apply_chain_event, message_ops
from explorer.indexer.verify import check_content
from ledger.follower import ChainEvent
from protocol import NodeKey
from protocol.errors import RemoteProtocolError
from tests.explorer import factory as f
from tests.explorer.conftest import put

SETTINGS = queries.ReadSettings()


async def test_adverts_make_an_overview(any_index: IndexDb) -> None:
    keys = [NodeKey.generate() for _ in range(3)]
    prices = [10, 30, 20]
    gpus = [("RTX 4090",), ("RTX 4090", "RTX 4090"), ("NVIDIA H100",)]
    envs = [
        f.envelope(k, f.advert(k, gpus=g, price_wei_per_ru=p, score_ru_per_hour=100))
        for k, g, p in zip(keys, gpus, prices, strict=True)
    ]
    assert await put(any_index, *envs) == 3
    o = await any_index.read(lambda tx: queries.overview(tx, f.wall_ms(), SETTINGS))
    assert o["nodes_online"] == 3
    assert o["capacity_ru_per_hour"] == 300
    assert o["gpus_by_model"] == [
        {"model": "RTX 4090", "count": 3},
        {"model": "NVIDIA H100", "count": 1},
    ]
    assert o["median_price_wei_per_ru"] == "20"
    later = f.wall_ms() + SETTINGS.online_window_ms + 1
    assert (await any_index.read(lambda tx: queries.overview(tx, later, SETTINGS)))[
        "nodes_online"
    ] == 0


async def test_same_envelope_is_indexed_once(any_index: IndexDb) -> None:
    key = NodeKey.generate()
    env = f.envelope(key, f.advert(key))
    assert await put(any_index, env, env) == 1
    assert await put(any_index, env) == 0
    node = await any_index.read(
        lambda tx: queries.node(tx, key.node_id.text, f.wall_ms(), SETTINGS)
    )
    assert node is not None and node["adverts"] == 1


async def test_job_frames_move_forward_only(any_index: IndexDb) -> None:
    requester, worker, checker = (NodeKey.generate() for _ in range(3))
    announce = f.job(requester, frames=3)
    jid = announce.job_id
    await put(any_index, f.envelope(requester, announce))
    await put(any_index, f.envelope(requester, f.work_record(worker, checker, jid, 1, True)))
    await put(any_index, f.envelope(requester, f.work_record(worker, checker, jid, 2, False)))
    # A late record (another task) cannot move an accepted frame back.
    await put(any_index, f.envelope(requester, f.work_record(worker, checker, jid, 1, False, 9)))
    await put(any_index, f.envelope(requester, f.voucher(jid, b"\x05" * 20, 123)))
    job = await any_index.read(lambda tx: queries.job(tx, jid.hex(), f.wall_ms(), SETTINGS))
    assert job is not None
    assert job["frames_by_state"] == {"accepted": 1, "rejected": 1, "open": 1}
    assert job["status"] == "running"
    assert [v["passed"] for v in job["verdicts"]][:2] == [True, False]
    assert job["vouchers"][0]["cumulative_wei"] == "123"
    node = await any_index.read(
        lambda tx: queries.node(tx, worker.node_id.text, f.wall_ms(), SETTINGS)
    )
    assert node is not None
    assert node["verdicts_received"] == {"passed": 1, "failed": 2}
    assert node["frames_rendered"] == 1
    o = await any_index.read(lambda tx: queries.overview(tx, f.wall_ms(), SETTINGS))
    assert o["jobs_running"] == 1 and o["frames_per_hour"] == 1


async def test_only_the_jobs_requester_records_and_closes_it(any_index: IndexDb) -> None:
    """Defamation attempts: a bare verdict from a stranger, a stranger's well-formed record
    for someone else's job, a stranger's closure. None is indexed; the requester's are."""
    from protocol.messages import ClosedOutcome, JobClosed

    requester, worker, checker, stranger = (NodeKey.generate() for _ in range(4))
    announce = f.job(requester, frames=2)
    jid = announce.job_id
    await put(any_index, f.envelope(requester, announce))
    await put(
        any_index,
        f.envelope(stranger, f.verdict(jid, 1, worker, passed=False)),
        f.envelope(stranger, f.work_record(worker, checker, jid, 1, False)),
        f.envelope(stranger, JobClosed(jid, ClosedOutcome.COMPLETED, 2, 0)),
    )
    job = await any_index.read(lambda tx: queries.job(tx, jid.hex(), f.wall_ms(), SETTINGS))
    assert job is not None and job["verdicts"] == [] and job["status"] == "running"
    assert job["frames_by_state"] == {"open": 2}
    await put(
        any_index,
        f.envelope(requester, f.work_record(worker, checker, jid, 1)),
        f.envelope(requester, f.work_record(worker, checker, jid, 2)),
        f.envelope(requester, JobClosed(jid, ClosedOutcome.COMPLETED, 2, 0)),
    )
    job = await any_index.read(lambda tx: queries.job(tx, jid.hex(), f.wall_ms(), SETTINGS))
    assert job is not None and job["status"] == "done"
    assert job["frames_by_state"] == {"accepted": 2}
    assert job["workers"] == [{"worker": worker.node_id.text, "frames": 2}]
    assert {v["checker"] for v in job["verdicts"]} == {checker.node_id.text}
    node = await any_index.read(
        lambda tx: queries.node(tx, worker.node_id.text, f.wall_ms(), SETTINGS)
    )
    assert node is not None and node["verdicts_received"] == {"passed": 2, "failed": 0}


async def test_only_the_requester_cancels(any_index: IndexDb) -> None:
    from protocol.messages import JobCancelled

    requester, other = NodeKey.generate(), NodeKey.generate()
    announce = f.job(requester)
    await put(any_index, f.envelope(requester, announce))
    await put(any_index, f.envelope(other, JobCancelled(announce.job_id, "not mine")))
    job = await any_index.read(
        lambda tx: queries.job(tx, announce.job_id.hex(), f.wall_ms(), SETTINGS)
    )
    assert job is not None and job["status"] == "running"
    await put(any_index, f.envelope(requester, JobCancelled(announce.job_id, "changed my mind")))
    job = await any_index.read(
        lambda tx: queries.job(tx, announce.job_id.hex(), f.wall_ms(), SETTINGS)
    )
    assert job is not None and job["status"] == "cancelled"


def test_content_checks_refuse_forged_claims() -> None:
    alice, mallory = NodeKey.generate(), NodeKey.generate()
    with pytest.raises(RemoteProtocolError):
        check_content(f.envelope(mallory, f.advert(alice)))  # alice's binding, mallory's envelope
    with pytest.raises(RemoteProtocolError):
        check_content(f.envelope(mallory, f.job(alice)))  # a job announced for someone else
    check_content(f.envelope(alice, f.job(alice)))


def test_unindexed_types_map_to_nothing() -> None:
    from protocol.messages import Heartbeat

    key = NodeKey.generate()
    assert message_ops(f.envelope(key, Heartbeat(b"\x00" * 32, b"\x00" * 32, 5)), 0) == []


async def test_chain_events_keyed_by_block_and_log_index(any_index: IndexDb) -> None:
    job_id = b"\x07" * 32
    event = ChainEvent(
        "Redeemed",
        {"job_id": job_id, "payee": "0xAbC0000000000000000000000000000000000001", "amount": 5 * 10**30,
         "cumulative": 5 * 10**30},
        block_number=10, log_index=2, block_hash=b"\x00" * 32, tx_hash=b"\x08" * 32,
    )  # fmt: skip
    assert await any_index.write(lambda tx: apply_chain_event(tx, event)) is True
    assert await any_index.write(lambda tx: apply_chain_event(tx, event)) is False
    job = await any_index.read(lambda tx: queries.job(tx, job_id.hex(), f.wall_ms(), SETTINGS))
    assert job is not None and job["status"] == "on chain only"
    assert job["redeemed_wei"] == str(5 * 10**30)  # beyond 64 bits, exact


def test_db_url_parsing() -> None:
    assert DbTarget.parse("postgresql://u@h/db").dialect == "postgresql"
    assert DbTarget.parse("sqlite:///tmp/x.db") == DbTarget("sqlite", "tmp/x.db")
    assert DbTarget.parse("index.db") == DbTarget("sqlite", "index.db")
    with pytest.raises(DatabaseUrlError):
        DbTarget.parse("mysql://nope")


async def test_every_read_query_runs(any_index: IndexDb) -> None:
    checker, worker, requester = NodeKey.generate(), NodeKey.generate(), NodeKey.generate()
    from protocol.messages import Role

    announce = f.job(requester, frames=2)
    await put(
        any_index,
        f.envelope(checker, f.advert(checker, roles=(Role.CHECKER,))),
        f.envelope(worker, f.advert(worker)),
        f.envelope(requester, announce),
        f.envelope(requester, f.work_record(worker, checker, announce.job_id, 1)),
    )
    now_ms = f.wall_ms()
    checkers = await any_index.read(lambda tx: queries.checkers(tx, SETTINGS))
    assert [c["node_id"] for c in checkers] == [checker.node_id.text]
    assert checkers[0]["verdicts_issued"] == 1 and checkers[0]["passed"] == 1
    assert len(await any_index.read(lambda tx: queries.list_nodes(tx, now_ms, SETTINGS))) == 2
    assert len(await any_index.read(lambda tx: queries.list_jobs(tx, SETTINGS))) == 1
    await any_index.write(
        lambda tx: queries.record_stats(tx, queries.overview(tx, now_ms, SETTINGS), 60_000)
    )
    points = await any_index.read(lambda tx: queries.series(tx, now_ms - 3_600_000))
    assert points[0]["nodes_online"] == 2
    requester_address = "0x" + "01" * 20
    found = await any_index.read(lambda tx: queries.find(tx, "address", requester_address))
    assert found == f"/address/{requester_address}"
    assert await any_index.read(lambda tx: queries.find(tx, "hash32", announce.job_id.hex())) == (
        f"/jobs/{announce.job_id.hex()}"
    )
    assert await any_index.read(lambda tx: queries.find(tx, "node", worker.node_id.text)) == (
        f"/nodes/{worker.node_id.text}"
    )


def _event(name: str, job_id: bytes, requester: str, amount: int, block: int) -> ChainEvent:
    return ChainEvent(
        name, {"job_id": job_id, "requester": requester, "amount": amount},
        block_number=block, log_index=0, block_hash=b"\x00" * 32, tx_hash=bytes([block]) * 32,
    )  # fmt: skip


async def test_a_squatters_escrow_under_the_same_id_is_not_the_jobs_money(
    any_index: IndexDb,
) -> None:
    """The escrow keys jobs by (requester, id): a stranger may deposit and refund under a job's
    id with its own account. The job page counts only its own requester's events."""
    alice = NodeKey.generate()
    own = "0x" + "11" * 20
    announce = f.job(alice, requester_address=bytes.fromhex(own[2:]))
    await put(any_index, f.envelope(alice, announce))
    job_id = announce.job_id
    for event in (
        _event("Deposited", job_id, "0x" + "11" * 20, 10**18, 1),
        _event("Deposited", job_id, "0x" + "22" * 20, 5 * 10**18, 2),
        _event("Refunded", job_id, "0x" + "22" * 20, 5 * 10**18, 3),
    ):
        assert await any_index.write(lambda tx, e=event: apply_chain_event(tx, e))
    job = await any_index.read(lambda tx: queries.job(tx, job_id.hex(), f.wall_ms(), SETTINGS))
    assert job is not None
    assert job["deposited_wei"] == str(10**18)
    assert job["refunded_wei"] == "0"
    assert job["status"] == "running"  # not "ended (refunded)" by someone else's refund
    assert [t["requester"] for t in job["transactions"]] == [own]


async def test_an_index_of_schema_1_learns_its_events_requesters(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE chain_events (block_number BIGINT NOT NULL, log_index BIGINT NOT NULL,
            name TEXT NOT NULL, tx_hash TEXT NOT NULL, job_id TEXT, account TEXT,
            amount_wei TEXT, args TEXT NOT NULL, PRIMARY KEY (block_number, log_index));
        INSERT INTO chain_events VALUES (7, 0, 'Refunded', '0x08', 'aa', '0xab',
            '5', '{"job_id": "0xaa", "requester": "0xAB", "amount": "5"}');
        INSERT INTO chain_events VALUES (8, 0, 'Staked', '0x09', NULL, '0xcd', '1',
            '{"account": "0xCD", "amount": "1"}');"""
    )
    conn.commit()
    conn.close()
    async with open_index(str(path), readers=1) as db:
        rows = await db.read(
            lambda tx: tx.all("SELECT block_number, requester FROM chain_events ORDER BY 1")
        )
        version = await db.read(
            lambda tx: tx.scalar("SELECT value FROM meta WHERE key = 'schema_version'")
        )
    assert [(r["block_number"], r["requester"]) for r in rows] == [(7, "0xab"), (8, None)]
    assert version == "4"


async def test_an_index_of_schema_3_learns_dispute_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '3');
        CREATE TABLE verdicts (digest TEXT PRIMARY KEY, job_id TEXT NOT NULL,
            frame BIGINT NOT NULL, worker TEXT NOT NULL, checker TEXT NOT NULL,
            passed BIGINT NOT NULL, tiles BIGINT NOT NULL, timestamp_ms BIGINT NOT NULL);
        INSERT INTO verdicts VALUES ('dd', 'aa', 1, 'w', 'c', 0, 24, 5);"""
    )
    conn.commit()
    conn.close()
    async with open_index(str(path), readers=1) as db:
        rows = await db.read(lambda tx: tx.all("SELECT digest, dispute, overruled FROM verdicts"))
    assert rows == [{"digest": "dd", "dispute": 0, "overruled": 0}]


async def test_a_dispute_record_overrules_the_rejection_and_accepts_the_frame(
    any_index: IndexDb,
) -> None:
    from protocol import decode_envelope
    from tests.protocol.test_record import World, signed
    from tests.protocol.test_record_disputes import dispute, rejected

    w = World()
    r = rejected(w, 3)
    honest = [NodeKey.generate(), NodeKey.generate()]
    overturn = dispute(w, r, [(k, True) for k in honest])
    announce = decode_envelope(signed(w.requester, w.announce))
    assert await put(any_index, announce, r.record, overturn) == 3
    job = await any_index.read(lambda tx: queries.job(tx, w.job.hex(), f.wall_ms(), SETTINGS))
    assert job is not None
    frame = next(fr for fr in job["frames"] if fr["frame"] == 3)
    assert frame["state"] == "accepted"
    first = next(v for v in job["verdicts"] if not v["dispute"])
    assert first["overruled"] == 1 and first["checker"] == w.checker.node_id.text
    assert sorted(v["passed"] for v in job["verdicts"] if v["dispute"]) == [True, True]
    assert [d["reason"] for d in job["disputes"]] == ["overturned"]
    checkers = await any_index.read(lambda tx: queries.checkers(tx, SETTINGS))
    liar = next(c for c in checkers if c["node_id"] == w.checker.node_id.text)
    assert liar["overruled"] == 1 and liar["disputes"] == 1
    worker = await any_index.read(
        lambda tx: queries.node(tx, w.worker.node_id.text, f.wall_ms(), SETTINGS)
    )
    assert worker is not None and worker["verdicts_received"] == {"passed": 0, "failed": 0}
    # A forged one — signed by a stranger — changes nothing.
    stranger = dispute(w, rejected(w, 4), [(k, True) for k in honest], by=NodeKey.generate())
    await put(any_index, stranger)
    again = await any_index.read(lambda tx: queries.job(tx, w.job.hex(), f.wall_ms(), SETTINGS))
    assert again is not None and [d["reason"] for d in again["disputes"]] == ["overturned"]
