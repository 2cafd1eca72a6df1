"""Which rules a job's journal was written under: the guard against replay across versions.

A restarted requester replays each open job's journal (``market_journal``) into a
fresh ``JobMachine`` and carries on from the state it rebuilds. The machine is the
code of the ``protocol`` package, so a node upgraded in the middle of a job would
replay the old inputs under new rules into a state the job never had: task ids
come from the award counter, so a worker's Result could name a task the replayed
machine does not know, and the amounts it owes could differ from the vouchers it
signed (review of stop 34). The journal's ``start`` entry therefore names the rules
(:func:`rules_digest`, a digest of the package's source and of the node's code
that replays the journal, so that no change can forget to bump a number, and of
the node's market settings), and a job whose journal names other rules is not carried
on: once replayed it is cancelled (node.roles.requester), which awards nothing more,
re-sends the vouchers, collects the accepted frames and refunds what is unspent after
the deadline. Journals written before the guard name no rules and are treated the
same way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import protocol

# Outside ``protocol``, the code a replay runs: the journal's reader and the signature
# checks the machine is handed (relative to the directory holding the packages).
REPLAY_FILES = ("node/roles/requester_job.py", "node/roles/plants.py", "ledger/fraud.py",
                "node/roles/challenger.py")  # its unpack_outcome reads 'capacity' entries


def rules_digest(settings: bytes = b"", root: Path | None = None) -> bytes:
    """SHA-256 over ``settings`` (the node's market settings, which the machine also
    decides by), the ``protocol`` package's Python sources and :data:`REPLAY_FILES`
    (path and bytes of each, in path order): what decides a journal's replay.
    ``root``: the directory holding the packages (this installation's by default)."""
    base = Path(protocol.__file__).parents[1] if root is None else root
    paths = sorted(p.relative_to(base).as_posix() for p in (base / "protocol").rglob("*.py"))
    if not paths:
        raise RuntimeError(f"no protocol sources under {base}: cannot name the rules")
    digest = hashlib.sha256(settings + b"\0")
    for name in [*paths, *REPLAY_FILES]:
        digest.update(name.encode() + b"\0")
        digest.update((base / name).read_bytes() + b"\0")
    return digest.digest()
