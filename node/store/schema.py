"""Versioned schema migrations, applied in order; ``PRAGMA user_version`` is the version.

Append a migration, never edit one that has shipped: a node's store is
upgraded by running every migration above its current version, each in its
own transaction, so a crash mid-upgrade leaves the previous version intact.
"""

from __future__ import annotations

# A requester's claims, one row per (job, task), from gathering to execution (6 and 8).
_CLAIMS = """
    CREATE TABLE {table} (
        job_id BLOB NOT NULL,
        task_id BLOB NOT NULL,
        state TEXT NOT NULL,
        data BLOB NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (job_id, task_id)
    );
    """

MIGRATIONS: tuple[str, ...] = (
    # 1: everything issue 3 needs; amounts are decimal text (wei exceeds i64).
    """
    CREATE TABLE identity (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE peers (
        peer_id TEXT PRIMARY KEY,
        addrs TEXT NOT NULL DEFAULT '[]',
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        last_dial_ms INTEGER,
        dial_failures INTEGER NOT NULL DEFAULT 0,
        banned_until_ms INTEGER NOT NULL DEFAULT 0,
        advert BLOB,
        advert_ms INTEGER
    );
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        requester TEXT NOT NULL,
        spec BLOB NOT NULL,
        state TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs(job_id),
        frame INTEGER NOT NULL,
        worker TEXT,
        state TEXT NOT NULL,
        price_wei TEXT,
        updated_ms INTEGER NOT NULL
    );
    CREATE INDEX tasks_by_job ON tasks(job_id);
    CREATE TABLE leases (
        task_id TEXT PRIMARY KEY REFERENCES tasks(task_id),
        worker TEXT NOT NULL,
        deadline_ms INTEGER NOT NULL,
        state TEXT NOT NULL
    );
    CREATE TABLE results (
        task_id TEXT NOT NULL,
        worker TEXT NOT NULL,
        frame_cid TEXT NOT NULL,
        render_ms INTEGER NOT NULL,
        envelope BLOB NOT NULL,
        received_ms INTEGER NOT NULL,
        PRIMARY KEY (task_id, worker)
    );
    CREATE TABLE verdicts (
        task_id TEXT NOT NULL,
        checker TEXT NOT NULL,
        passed INTEGER NOT NULL,
        envelope BLOB NOT NULL,
        received_ms INTEGER NOT NULL,
        PRIMARY KEY (task_id, checker)
    );
    CREATE TABLE vouchers (
        payer TEXT NOT NULL,
        payee TEXT NOT NULL,
        cumulative_wei TEXT NOT NULL,
        envelope BLOB NOT NULL,
        received_ms INTEGER NOT NULL,
        PRIMARY KEY (payer, payee)
    );
    """,
    # 2: role drivers (issue 7): the requester's machine journal, a job's output
    # folder, and the vouchers a worker or checker earned.
    """
    ALTER TABLE jobs ADD COLUMN out_dir TEXT;
    CREATE TABLE market_journal (
        job_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        peer BLOB NOT NULL,
        data BLOB NOT NULL,
        now_ms INTEGER NOT NULL,
        PRIMARY KEY (job_id, seq)
    );
    CREATE TABLE earned_vouchers (
        chain_id INTEGER NOT NULL,
        contract BLOB NOT NULL,
        job_id BLOB NOT NULL,
        payee BLOB NOT NULL,
        payer TEXT NOT NULL,
        cumulative_wei TEXT NOT NULL,
        signature BLOB NOT NULL,
        PRIMARY KEY (chain_id, contract, job_id, payee)
    );
    """,
    # 3: lanes (issue 13): a voucher names its requester (the escrow keys jobs by
    # requester and id), and the payee keeps what the chain paid per lane and the
    # job's redeem-by time (deadline + grace; 0 while not yet read from the chain).
    # Vouchers kept before this migration were signed for the old escrow's type
    # (no requester) and cannot pay on the new one: they are dropped.
    """
    DROP TABLE earned_vouchers;
    CREATE TABLE earned_vouchers (
        chain_id INTEGER NOT NULL,
        contract BLOB NOT NULL,
        requester BLOB NOT NULL,
        job_id BLOB NOT NULL,
        payee BLOB NOT NULL,
        payer TEXT NOT NULL,
        cumulative_wei TEXT NOT NULL,
        signature BLOB NOT NULL,
        paid_wei TEXT NOT NULL DEFAULT '0',
        redeem_by_s INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (chain_id, contract, requester, job_id, payee)
    );
    """,
    # 4: the public work record (issue 16): the job announces, work records and
    # job closures this node keeps and serves to fresh peers, in arrival order
    # (seq is the sync cursor). node/record/store.py bounds the table.
    """
    CREATE TABLE work_record (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        digest BLOB NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        job_id BLOB NOT NULL,
        envelope BLOB NOT NULL,
        received_ms INTEGER NOT NULL
    );
    CREATE INDEX work_record_by_job ON work_record(job_id, kind);
    """,
    # 5: the requester's reputation view (issue 16): per worker, what its job
    # machines judged (protocol.reputation.WorkerRecord) and when last judged.
    """
    CREATE TABLE worker_records (
        worker BLOB PRIMARY KEY,
        accepted INTEGER NOT NULL,
        rejected INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        timed_out INTEGER NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        judged_ms INTEGER NOT NULL
    );
    CREATE INDEX worker_records_judged ON worker_records (judged_ms);
    """,
    # 6: the requester's fraud claims (issue 17): one per disputed-and-upheld task,
    # from gathering its checkers' signatures to execution, so that a restart does
    # not lose a claim in its challenge window (node/roles/slasher.py).
    _CLAIMS.format(table="fraud_claims"),
    # 7: the worker's claim watch (issue 17): every result it signed, watched for fraud
    # claims until ``until_ms``, so a restart inside a claim's window still answers it
    # (node/roles/claim_watch.py; the newest MAX_WATCHED are kept).
    """
    CREATE TABLE claim_watch (
        job_id BLOB NOT NULL,
        task_id BLOB NOT NULL,
        data BLOB NOT NULL,
        until_ms INTEGER NOT NULL,
        PRIMARY KEY (job_id, task_id)
    );
    """,
    # 8: the requester's claims against checkers that passed its plants (issue 17), kept
    # as migration 6 keeps fraud claims; apart, since one task may have both a worker's
    # claim and its plant checker's (node/roles/slasher.py).
    _CLAIMS.format(table="pass_claims"),
    # 9: whose vouchers a checker keeps for jobs it answered without signing a pass (only
    # rejections): the claim watch names the requester of jobs it signed work in, and a
    # restarted checker dropped the fee vouchers of the others (node/roles/claim_watch.py).
    """
    CREATE TABLE job_payers (
        job_id BLOB PRIMARY KEY,
        requester BLOB NOT NULL,
        address BLOB NOT NULL,
        until_ms INTEGER NOT NULL
    );
    """,
)
