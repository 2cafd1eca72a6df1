"""Public explorer website (not built yet).

A passive node that subscribes to the capacity and job topics, verifies every
envelope, follows the escrow contract's events on chain, indexes both into
SQLite (PostgreSQL for a public deployment) and serves pages and a read-only
JSON API with FastAPI.
"""
