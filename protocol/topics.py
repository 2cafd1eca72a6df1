"""Gossip topics and stream protocol ids (see docs/PROTOCOL.md)."""

from __future__ import annotations

PROTOCOL_VERSION = 1

CAPACITY_TOPIC = "/pictor/1/capacity"
JOBS_TOPIC = "/pictor/1/jobs"

# Direct request/response: one signed envelope in, one (or none) out.
MARKET_PROTOCOL = "/pictor/market/1.0.0"
# Content: a FetchRequest envelope in, raw bytes out (checked against the CID).
CONTENT_PROTOCOL = "/pictor/content/1.0.0"

GOSSIP_TOPICS = (CAPACITY_TOPIC, JOBS_TOPIC)
STREAM_PROTOCOLS = (MARKET_PROTOCOL, CONTENT_PROTOCOL)
