"""The explorer's website and JSON read API (FastAPI on hypercorn's trio worker)."""
