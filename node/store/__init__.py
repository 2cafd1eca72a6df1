"""The node's persistent store: SQLite (WAL) on a worker thread."""

from node.store.db import Store, open_store

__all__ = ["Store", "open_store"]
