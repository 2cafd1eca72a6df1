"""Pure indexing: decoded, verified events in, row upserts out.

Nothing here touches a database, a clock or the network: each function maps
one event to a list of ``(sql, params)`` operations, so tests can check the
mapping directly and both database dialects run the same statements.
:func:`apply_message` and :func:`apply_chain_event` are the only two entry
points the writer uses; each starts with the event's idempotence key
(envelope digest, or block number + log index) and applies the rest only if
that key was new, so replays after a restart change nothing.

Frame state only moves forward (open → awarded → rendered/failed →
accepted/rejected; a rejected frame may be accepted after a re-award), and
only the job's requester may award, record or close: those checks are in the
statements' WHERE clauses, so out-of-order or forged updates from other
senders are harmless no-ops. Verdicts are indexed only from the public work
record (``WorkRecord``, :mod:`protocol.record`): a bare ``Verdict`` on gossip
is anyone's claim (a stranger could sign one "rejecting" any worker) and is
not indexed, nor is a bare ``Result``. A ``DisputeRecord`` adds its checkers'
verdicts (``dispute = 1``), a ``disputes`` row, and when the verdicts overturn
the rejection (``protocol.record.overturned``, every checker counted) marks
the rejecting verdict ``overruled`` and the frame accepted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from explorer.indexer.db import Tx
from explorer.indexer.schema import wei_key
from ledger.follower import ChainEvent
from protocol import Envelope, NodeId
from protocol.envelope import decode_envelope
from protocol.identity import address_text
from protocol.messages import (
    Award,
    CapacityAdvert,
    Dispute,
    DisputeRecord,
    Failure,
    JobAnnounce,
    JobCancelled,
    JobClosed,
    Voucher,
    WorkRecord,
)
from protocol.record import open_dispute, open_record, overturned

Op = tuple[str, tuple[Any, ...]]
FRAME_STATES = ("open", "awarded", "rendered", "failed", "accepted", "rejected")


def node_text(raw: bytes) -> str:
    return NodeId(raw).text


def addr(raw: bytes) -> str:
    return address_text(raw).lower()


def _advert(env: Envelope, m: CapacityAdvert, received_ms: int) -> list[Op]:
    node = env.sender.text
    gpus = [{"model": g.model, "vram_mib": g.vram_mib} for g in m.gpus]
    ops: list[Op] = [
        (
            "INSERT INTO nodes (node_id, address, roles, renderer_builds, gpus, "
            "score_ru_per_hour, price_wei_per_ru, stake_wei, free_slots, addrs, "
            "first_seen_ms, last_seen_ms, adverts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1) "
            "ON CONFLICT (node_id) DO UPDATE SET address = excluded.address, "
            "roles = excluded.roles, renderer_builds = excluded.renderer_builds, "
            "gpus = excluded.gpus, score_ru_per_hour = excluded.score_ru_per_hour, "
            "price_wei_per_ru = excluded.price_wei_per_ru, stake_wei = excluded.stake_wei, "
            "free_slots = excluded.free_slots, addrs = excluded.addrs, "
            "last_seen_ms = excluded.last_seen_ms, adverts = nodes.adverts + 1",
            (
                node,
                addr(m.payment.address),
                ",".join(r.value for r in m.roles),
                ",".join(m.renderer_builds),
                json.dumps(gpus),
                m.score_ru_per_hour,
                wei_key(m.price_wei_per_ru),
                str(m.stake_wei),
                m.free_slots,
                json.dumps(list(m.addrs)),
                received_ms,
                received_ms,
            ),
        ),
        ("DELETE FROM node_gpus WHERE node_id = ?", (node,)),
    ]
    for slot, gpu in enumerate(m.gpus):
        ops.append(
            (
                "INSERT INTO node_gpus (node_id, slot, model, vram_mib, last_seen_ms) "
                "VALUES (?,?,?,?,?)",
                (node, slot, gpu.model, gpu.vram_mib, received_ms),
            )
        )
    return ops


def _announce(env: Envelope, m: JobAnnounce, received_ms: int) -> list[Op]:
    s, job = m.spec, m.job_id.hex()
    escrow = s.escrow
    ops: list[Op] = [
        (
            "INSERT INTO jobs (job_id, requester, requester_address, scene_cid, renderer_build, "
            "engine, resolution, samples, frames_total, ru_per_frame, max_price_wei_per_frame, "
            "budget_wei, deadline_ms, assurance, escrow_contract, escrow_tx, created_ms, "
            "announced_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (job_id) DO NOTHING",
            (
                job,
                env.sender.text,
                addr(s.requester_address),
                s.scene_cid,
                s.renderer_build,
                s.settings.engine,
                f"{s.settings.resolution_x}x{s.settings.resolution_y}",
                s.settings.samples,
                len(s.frames),
                s.ru_per_frame,
                str(s.max_price_wei_per_frame),
                str(s.budget_wei),
                s.deadline_ms,
                s.assurance.value,
                addr(escrow.contract) if escrow else "",
                "0x" + escrow.deposit_tx.hex() if escrow else "",
                s.created_ms,
                received_ms,
            ),
        )
    ]
    for frame in s.frames:
        ops.append(
            (
                "INSERT INTO frames (job_id, frame, state, updated_ms) VALUES (?,?,'open',?) "
                "ON CONFLICT (job_id, frame) DO NOTHING",
                (job, frame, received_ms),
            )
        )
    return ops


_BY_REQUESTER = (
    "EXISTS (SELECT 1 FROM jobs WHERE jobs.job_id = frames.job_id AND jobs.requester = ?)"
)


def _award(env: Envelope, m: Award, received_ms: int) -> list[Op]:
    return [
        (
            "UPDATE frames SET state = 'awarded', worker = ?, task_id = ?, updated_ms = ? "
            f"WHERE job_id = ? AND frame = ? AND state IN ('open', 'awarded') AND {_BY_REQUESTER}",
            (
                node_text(m.worker),
                m.task_id.hex(),
                received_ms,
                m.job_id.hex(),
                m.frame,
                env.sender.text,
            ),
        )
    ]


_JOB_BY_REQUESTER = "EXISTS (SELECT 1 FROM jobs WHERE jobs.job_id = ? AND jobs.requester = ?)"


def _work_record(env: Envelope, m: WorkRecord, received_ms: int) -> list[Op]:
    """A checked task, as the job's requester recorded it (checked: verify.check_content)."""
    t = open_record(env)
    job, requester = t.job_id.hex(), env.sender.text
    worker, state = node_text(t.worker), "accepted" if t.passed else "rejected"
    return [
        (
            "INSERT INTO verdicts (digest, job_id, frame, worker, checker, passed, tiles, "
            f"timestamp_ms) SELECT ?,?,?,?,?,?,?,? WHERE {_JOB_BY_REQUESTER} "
            "ON CONFLICT (digest) DO NOTHING",
            (
                t.verdict_digest.hex(),
                job,
                t.frame,
                worker,
                node_text(t.checker),
                int(t.passed),
                t.tiles,
                t.timestamp_ms,
                job,
                requester,
            ),
        ),
        (
            "UPDATE frames SET state = ?, worker = ?, task_id = ?, frame_cid = ?, "
            "render_time_ms = ?, rendered_ms = ?, updated_ms = ? "
            f"WHERE job_id = ? AND frame = ? AND state <> 'accepted' AND {_BY_REQUESTER}",
            (
                state,
                worker,
                t.task_id.hex(),
                t.frame_cid,
                t.render_time_ms,
                t.timestamp_ms,
                received_ms,
                job,
                t.frame,
                requester,
            ),
        ),
    ]


def _dispute_record(env: Envelope, m: DisputeRecord, received_ms: int) -> list[Op]:
    """A dispute's verdicts, as the job's requester recorded them (checked: verify.check_content)."""
    votes = open_dispute(env)
    job, requester, task = m.job_id.hex(), env.sender.text, m.task_id.hex()
    result = decode_envelope(m.result)
    worker, frame = node_text(result.sender.raw), getattr(result.message, "frame", 0)
    ops: list[Op] = []
    for wire, (checker, passed) in zip(m.verdicts, votes.votes, strict=True):
        verdict = decode_envelope(wire)
        ops.append((
            "INSERT INTO verdicts (digest, job_id, frame, worker, checker, passed, tiles, "
            f"timestamp_ms, dispute) SELECT ?,?,?,?,?,?,?,?,1 WHERE {_JOB_BY_REQUESTER} "
            "ON CONFLICT (digest) DO NOTHING",
            (verdict.digest.hex(), job, frame, worker, node_text(checker), int(passed),
             len(getattr(verdict.message, "tiles", ())), env.timestamp_ms, job, requester),
        ))  # fmt: skip
    won = overturned(True, [passed for _, passed in votes.votes])
    ops.append((
        "INSERT INTO disputes (digest, job_id, task_id, sender, verdict_digest, reason, "
        f"timestamp_ms) SELECT ?,?,?,?,?,?,? WHERE {_JOB_BY_REQUESTER} "
        "ON CONFLICT (digest) DO NOTHING",
        (env.digest.hex(), job, task, requester, m.verdict_digest.hex(),
         "overturned" if won else "upheld", env.timestamp_ms, job, requester),
    ))  # fmt: skip
    if won:
        ops.append((
            "UPDATE verdicts SET overruled = 1 WHERE digest = ? AND job_id = ? AND frame = ? "
            f"AND worker = ? AND passed = 0 AND dispute = 0 AND {_JOB_BY_REQUESTER}",
            (m.verdict_digest.hex(), job, frame, worker, job, requester),
        ))  # fmt: skip
        ops.append((
            "UPDATE frames SET state = 'accepted', updated_ms = ? "
            f"WHERE job_id = ? AND frame = ? AND task_id = ? AND state = 'rejected' AND {_BY_REQUESTER}",
            (received_ms, job, frame, task, requester),
        ))  # fmt: skip
    return ops


def _closed(env: Envelope, m: JobClosed, received_ms: int) -> list[Op]:
    return [
        (
            "UPDATE jobs SET closed_ms = ?, outcome = ? WHERE job_id = ? AND requester = ? "
            "AND closed_ms IS NULL",
            (env.timestamp_ms, m.outcome.value, m.job_id.hex(), env.sender.text),
        )
    ]


def _failure(env: Envelope, m: Failure, received_ms: int) -> list[Op]:
    return [
        (
            "UPDATE frames SET state = 'failed', worker = ?, updated_ms = ? "
            "WHERE job_id = ? AND frame = ? AND state IN ('open', 'awarded')",
            (env.sender.text, received_ms, m.job_id.hex(), m.frame),
        )
    ]


def _dispute(env: Envelope, m: Dispute, received_ms: int) -> list[Op]:
    return [
        (
            "INSERT INTO disputes (digest, job_id, task_id, sender, verdict_digest, reason, "
            "timestamp_ms) VALUES (?,?,?,?,?,?,?) ON CONFLICT (digest) DO NOTHING",
            (
                env.digest.hex(),
                m.job_id.hex(),
                m.task_id.hex(),
                env.sender.text,
                m.verdict_digest.hex(),
                m.reason,
                env.timestamp_ms,
            ),
        )
    ]


def _voucher(env: Envelope, m: Voucher, received_ms: int) -> list[Op]:
    return [
        (
            "INSERT INTO vouchers (digest, job_id, payee, cumulative_wei, signer, timestamp_ms) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT (digest) DO NOTHING",
            (
                env.digest.hex(),
                m.job_id.hex(),
                addr(m.payee),
                str(m.cumulative_wei),
                env.sender.text,
                env.timestamp_ms,
            ),
        )
    ]


def _cancelled(env: Envelope, m: JobCancelled, received_ms: int) -> list[Op]:
    return [
        (
            "UPDATE jobs SET cancelled_ms = ? WHERE job_id = ? AND requester = ? "
            "AND cancelled_ms IS NULL",
            (env.timestamp_ms, m.job_id.hex(), env.sender.text),
        )
    ]


_MAPPERS: dict[type, Callable[[Envelope, Any, int], list[Op]]] = {
    CapacityAdvert: _advert,
    JobAnnounce: _announce,
    Award: _award,
    Failure: _failure,
    WorkRecord: _work_record,
    DisputeRecord: _dispute_record,
    JobClosed: _closed,
    Dispute: _dispute,
    Voucher: _voucher,
    JobCancelled: _cancelled,
}


def message_ops(env: Envelope, received_ms: int) -> list[Op]:
    """The upserts for one verified envelope (message types we don't index: none)."""
    mapper = _MAPPERS.get(type(env.message))
    return mapper(env, env.message, received_ms) if mapper else []


def chain_event_ops(event: ChainEvent) -> list[Op]:
    """The row for one escrow event; derived totals are computed when read."""
    args = event.args
    job = args.get("job_id")
    account = next(
        (args[k] for k in ("payee", "worker", "account", "checker", "requester") if k in args), None
    )
    amount = args.get("amount")
    requester = args.get("requester")  # the escrow keys a job by (requester, id): both identify it
    return [
        (
            "INSERT INTO chain_events (block_number, log_index, name, tx_hash, job_id, requester, "
            "account, amount_wei, args) VALUES (?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (block_number, log_index) DO NOTHING",
            (
                event.block_number,
                event.log_index,
                event.name,
                "0x" + event.tx_hash.hex(),
                bytes(job).hex() if job is not None else None,
                str(requester).lower() if requester is not None else None,
                str(account).lower() if account is not None else None,
                str(amount) if amount is not None else None,
                json.dumps({k: _jsonable(v) for k, v in args.items()}),
            ),
        )
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # wei values overflow JSON's safe integers
    return value if isinstance(value, str | bool) or value is None else str(value)


def apply_message(tx: Tx, env: Envelope, received_ms: int) -> bool:
    """Index one envelope once; False when its digest was indexed before."""
    new = tx.execute(
        "INSERT INTO messages (digest, type, sender, timestamp_ms, received_ms) "
        "VALUES (?,?,?,?,?) ON CONFLICT (digest) DO NOTHING",
        (env.digest.hex(), env.type, env.sender.text, env.timestamp_ms, received_ms),
    )
    if not new:
        return False
    for sql, params in message_ops(env, received_ms):
        tx.execute(sql, params)
    return True


def apply_chain_event(tx: Tx, event: ChainEvent) -> bool:
    """Index one chain event once; False when (block, log index) was indexed before."""
    changed = 0
    for sql, params in chain_event_ops(event):
        changed += tx.execute(sql, params)
    return changed > 0


def set_meta(tx: Tx, key: str, value: str) -> None:
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def get_meta(tx: Tx, key: str) -> str | None:
    value = tx.scalar("SELECT value FROM meta WHERE key = ?", (key,))
    return None if value is None else str(value)
