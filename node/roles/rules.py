"""Which rules a job's journal was written under: the guard against replay across versions.

A restarted requester replays each open job's journal (``market_journal``) into a
fresh ``JobMachine`` and carries on from the state it rebuilds. The machine is the
code of the ``protocol`` package, so a node upgraded in the middle of a job would
replay the old inputs under new rules into a state the job never had: task ids
come from the award counter, so a worker's Result could name a task the replayed
machine does not know, and the amounts it owes could differ from the vouchers it
signed (review of stop 34). The journal's ``start`` entry therefore names the rules
(:func:`rules_digest`, a digest of the package's source, so that no change can
forget to bump a number, and of the node's market settings), and a job whose journal names other rules is not carried
on: once replayed it is cancelled (node.roles.requester), which awards nothing more,
re-sends the vouchers, collects the accepted frames and refunds what is unspent after
the deadline. Journals written before the guard name no rules and are treated the
same way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import protocol


def rules_digest(settings: bytes = b"", root: Path | None = None) -> bytes:
    """SHA-256 over ``settings`` (the node's market settings, which the machine also
    decides by) and the ``protocol`` package's Python sources (path and bytes of each,
    in path order): what decides a journal's replay."""
    base = Path(protocol.__file__).parent if root is None else root
    digest = hashlib.sha256(settings + b"\0")
    for path in sorted(base.rglob("*.py")):
        digest.update(path.relative_to(base).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.digest()
