"""Gossip topics and stream protocol ids (see docs/PROTOCOL.md)."""

from __future__ import annotations

PROTOCOL_VERSION = 1

CAPACITY_TOPIC = "/pictor/1/capacity"
JOBS_TOPIC = "/pictor/1/jobs"
# The public work record: WorkRecord, DisputeRecord and JobClosed, signed by a job's requester.
RECORD_TOPIC = "/pictor/1/record"

# Direct request/response: one signed envelope in, a 1-byte ack (or nothing) out;
# answers travel as new requests on new streams (docs/PROTOCOL.md §6).
MARKET_PROTOCOL = "/pictor/market/1.0.0"
# The market protocol's one-byte replies (docs/PROTOCOL.md §6.1): received and handed to
# the roles; or refused for good (an illegal message, one its roles do not take): the
# sender must not resend it. A stream closed without either may be retried.
MARKET_ACK = b"\x00"
MARKET_REFUSED = b"\x01"
# Content: unsigned manifest/chunk requests, raw replies checked against the CID
# (node/content/net.py; docs/PROTOCOL.md §7). FetchRequest is not used on it.
CONTENT_PROTOCOL = "/pictor/content/1.0.0"
# The work record's history, in pages, for a node that was not listening (node/record/sync.py).
RECORD_SYNC_PROTOCOL = "/pictor/record-sync/1.0.0"

GOSSIP_TOPICS = (CAPACITY_TOPIC, JOBS_TOPIC, RECORD_TOPIC)
STREAM_PROTOCOLS = (MARKET_PROTOCOL, CONTENT_PROTOCOL, RECORD_SYNC_PROTOCOL)
