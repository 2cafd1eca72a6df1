"""The index's tables, in SQL that SQLite (3.24+) and PostgreSQL both accept.

Portability rules kept here: parameters are written ``?`` (the PostgreSQL
dialect rewrites them to ``%s``), so no statement may contain a literal
question mark; upserts use ``INSERT ... ON CONFLICT``; integers that fit 64
bits are ``BIGINT``; wei amounts (up to 2**256) are decimal ``TEXT``, and
where they must sort (prices) also zero-padded to 78 digits, because text
order then equals numeric order in every database. Bytes are lower-case hex
text so ids read the same in the database, the URL and the page.

Idempotence: a gossip message is keyed by its envelope digest
(``messages``), a chain event by (block number, log index)
(``chain_events``), and the follower's cursor lives in ``meta`` and is
written in the same transaction as the events it covers, so a restart
resumes exactly where the last commit ended — no gap, no duplicate.
"""

from __future__ import annotations

# 2: chain_events.requester (jobs on chain are keyed by requester and id)
# 3: jobs.closed_ms and jobs.outcome (the requester's JobClosed, issue 16)
# 4: verdicts.dispute (a dispute checker's) and verdicts.overruled (a rejection a
#    dispute overturned): the requester's DisputeRecord, issue 16
SCHEMA_VERSION = 4
WEI_DIGITS = 78  # len(str(2**256 - 1))

TABLES = (
    """CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS messages (
        digest TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        sender TEXT NOT NULL,
        timestamp_ms BIGINT NOT NULL,
        received_ms BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS nodes (
        node_id TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        roles TEXT NOT NULL,
        renderer_builds TEXT NOT NULL,
        gpus TEXT NOT NULL,
        score_ru_per_hour BIGINT NOT NULL,
        price_wei_per_ru TEXT NOT NULL,
        stake_wei TEXT NOT NULL,
        free_slots BIGINT NOT NULL,
        addrs TEXT NOT NULL,
        first_seen_ms BIGINT NOT NULL,
        last_seen_ms BIGINT NOT NULL,
        adverts BIGINT NOT NULL)""",
    # Covering indexes: the overview aggregates read these and never the wide rows.
    "CREATE INDEX IF NOT EXISTS nodes_online ON nodes (last_seen_ms, score_ru_per_hour)",
    "CREATE INDEX IF NOT EXISTS nodes_price ON nodes (price_wei_per_ru, last_seen_ms)",
    "CREATE INDEX IF NOT EXISTS nodes_address ON nodes (address)",
    """CREATE TABLE IF NOT EXISTS node_gpus (
        node_id TEXT NOT NULL,
        slot BIGINT NOT NULL,
        model TEXT NOT NULL,
        vram_mib BIGINT NOT NULL,
        last_seen_ms BIGINT NOT NULL,
        PRIMARY KEY (node_id, slot))""",
    "CREATE INDEX IF NOT EXISTS node_gpus_online ON node_gpus (last_seen_ms, model)",
    """CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY,
        requester TEXT NOT NULL,
        requester_address TEXT NOT NULL,
        scene_cid TEXT NOT NULL,
        renderer_build TEXT NOT NULL,
        engine TEXT NOT NULL,
        resolution TEXT NOT NULL,
        samples BIGINT NOT NULL,
        frames_total BIGINT NOT NULL,
        ru_per_frame BIGINT NOT NULL,
        max_price_wei_per_frame TEXT NOT NULL,
        budget_wei TEXT NOT NULL,
        deadline_ms BIGINT NOT NULL,
        assurance TEXT NOT NULL,
        escrow_contract TEXT NOT NULL,
        escrow_tx TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        announced_ms BIGINT NOT NULL,
        cancelled_ms BIGINT,
        closed_ms BIGINT,
        outcome TEXT)""",
    "CREATE INDEX IF NOT EXISTS jobs_requester ON jobs (requester)",
    "CREATE INDEX IF NOT EXISTS jobs_deadline ON jobs (deadline_ms)",
    """CREATE TABLE IF NOT EXISTS frames (
        job_id TEXT NOT NULL,
        frame BIGINT NOT NULL,
        state TEXT NOT NULL,
        worker TEXT,
        task_id TEXT,
        frame_cid TEXT,
        render_time_ms BIGINT,
        rendered_ms BIGINT,
        updated_ms BIGINT NOT NULL,
        PRIMARY KEY (job_id, frame))""",
    "CREATE INDEX IF NOT EXISTS frames_rendered ON frames (rendered_ms, state)",
    "CREATE INDEX IF NOT EXISTS frames_worker ON frames (worker, state)",
    """CREATE TABLE IF NOT EXISTS verdicts (
        digest TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        frame BIGINT NOT NULL,
        worker TEXT NOT NULL,
        checker TEXT NOT NULL,
        passed BIGINT NOT NULL,
        tiles BIGINT NOT NULL,
        timestamp_ms BIGINT NOT NULL,
        dispute BIGINT NOT NULL DEFAULT 0,
        overruled BIGINT NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS verdicts_job ON verdicts (job_id)",
    "CREATE INDEX IF NOT EXISTS verdicts_worker ON verdicts (worker)",
    "CREATE INDEX IF NOT EXISTS verdicts_checker ON verdicts (checker)",
    """CREATE TABLE IF NOT EXISTS disputes (
        digest TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        verdict_digest TEXT NOT NULL,
        reason TEXT NOT NULL,
        timestamp_ms BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS disputes_job ON disputes (job_id)",
    """CREATE TABLE IF NOT EXISTS vouchers (
        digest TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        payee TEXT NOT NULL,
        cumulative_wei TEXT NOT NULL,
        signer TEXT NOT NULL,
        timestamp_ms BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS vouchers_job ON vouchers (job_id)",
    """CREATE TABLE IF NOT EXISTS chain_events (
        block_number BIGINT NOT NULL,
        log_index BIGINT NOT NULL,
        name TEXT NOT NULL,
        tx_hash TEXT NOT NULL,
        job_id TEXT,
        requester TEXT,
        account TEXT,
        amount_wei TEXT,
        args TEXT NOT NULL,
        PRIMARY KEY (block_number, log_index))""",
    "CREATE INDEX IF NOT EXISTS chain_events_job ON chain_events (job_id)",
    "CREATE INDEX IF NOT EXISTS chain_events_account ON chain_events (account)",
    "CREATE INDEX IF NOT EXISTS chain_events_tx ON chain_events (tx_hash)",
    """CREATE TABLE IF NOT EXISTS stats (
        at_ms BIGINT PRIMARY KEY,
        nodes_online BIGINT NOT NULL,
        gpus_online BIGINT NOT NULL,
        capacity_ru_per_hour BIGINT NOT NULL,
        jobs_running BIGINT NOT NULL,
        frames_per_hour BIGINT NOT NULL,
        median_price_wei_per_ru TEXT NOT NULL)""",
)


def wei_key(amount_wei: int) -> str:
    """Zero-padded decimal: sorts as text exactly as the integers sort."""
    return str(amount_wei).zfill(WEI_DIGITS)
