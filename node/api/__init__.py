"""The node's local HTTP API (FastAPI on hypercorn's trio worker) and metrics."""
