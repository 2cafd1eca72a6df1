"""The explorer's indexer: gossip and escrow events into SQL (see docs/EXPLORER.md)."""
