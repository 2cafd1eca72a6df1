"""Checks beyond the envelope signature, before anything is indexed (pure).

``protocol.decode_envelope`` proves who signed; these prove the content is
self-consistent, so the public index never shows a claim the signer could
not make: an advert's payment binding must be the sender's and verify both
ways, an announced job id must be the hash of its spec and its requester
the sender; a work record must carry a worker's signed result and a checker's
signed verdict on exactly it (``protocol.record.open_record``; that its
signer is the job's requester is checked where it is indexed), a dispute
record checkers' verdicts on exactly the disputed result (``open_dispute``).
"""

from __future__ import annotations

from protocol import Envelope
from protocol.errors import BadBinding, RemoteProtocolError
from protocol.messages import CapacityAdvert, DisputeRecord, JobAnnounce, WorkRecord, job_id_of
from protocol.record import open_dispute, open_record


class InconsistentMessage(RemoteProtocolError):
    """A signed message whose content contradicts itself or its signer."""


def check_content(env: Envelope) -> None:
    """Raise a ``RemoteProtocolError`` when ``env`` must not be indexed."""
    m = env.message
    if isinstance(m, CapacityAdvert):
        if m.payment.node != env.sender.raw:
            raise BadBinding("advert's payment binding is for another node")
        m.payment.verify()
    elif isinstance(m, JobAnnounce):
        if job_id_of(m.spec) != m.job_id:
            raise InconsistentMessage("job id is not the hash of the spec", penalty=50)
        if m.spec.requester != env.sender.raw:
            raise InconsistentMessage(
                "job announced by someone other than its requester", penalty=50
            )
    elif isinstance(m, WorkRecord):
        open_record(env)
    elif isinstance(m, DisputeRecord):
        open_dispute(env)
