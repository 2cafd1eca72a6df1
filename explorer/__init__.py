"""Public explorer website: a passive node's index of the network, served read-only.

A passive node (``explorer.indexer.gossip``) joins from bootstrap addresses,
subscribes to the capacity and job topics, verifies every envelope (the
node's ``Gate``: decode, signer check, ``ReplayGuard``; then content checks)
and writes it into SQLite (PostgreSQL for a public deployment) through the
pure mapping in ``explorer.indexer.rows``. ``explorer.indexer.chain`` follows
the escrow contract's events with ``ledger.follower`` and a persisted cursor.
``explorer.web`` serves pages and a read-only JSON API (OpenAPI at ``/openapi.json``)
with FastAPI on hypercorn's trio worker; ``explorer.service`` composes it all
for ``pictor explorer serve``. See docs/EXPLORER.md.
"""
