"""Structured logging for the node: text or JSON lines, secrets never logged.

Records carry structured fields through ``extra={"fields": {...}}``; the JSON
formatter emits them as top-level keys. A redaction filter replaces values of
keys that look secret (token, key, seed, secret, password, authorization) so a
careless ``extra`` cannot leak the API token or a private key.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_SECRET_WORDS = ("token", "secret", "seed", "password", "authorization", "private", "key")
# Keys that contain a secret word but are public by construction.
_PUBLIC_KEYS = frozenset({"peer", "node_id", "public_key", "key_path"})
REDACTED = "[redacted]"


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return lowered not in _PUBLIC_KEYS and any(word in lowered for word in _SECRET_WORDS)


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (REDACTED if _is_secret(k) else v) for k, v in fields.items()}


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = redact(fields)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


def setup_logging(*, json_lines: bool, level: str, stream: Any = None) -> None:
    """Configure the root logger once for the node process."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(_RedactFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # py-libp2p logs every dropped stream at WARNING; keep its noise out of ours.
    logging.getLogger("libp2p").setLevel(max(logging.ERROR, root.level))


def log_event(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    logger.log(level, msg, extra={"fields": fields})
