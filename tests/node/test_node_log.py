"""Structured logs: JSON lines with fields, secrets redacted."""

from __future__ import annotations

import io
import json
import logging

from node.log import REDACTED, log_event, setup_logging


def test_json_lines_with_fields_and_redaction() -> None:
    out = io.StringIO()
    setup_logging(json_lines=True, level="info", stream=out)
    try:
        log_event(logging.getLogger("t"), logging.INFO, "hello", peer="12D3", api_token="abc")
        entry = json.loads(out.getvalue().strip())
        assert entry["msg"] == "hello"
        assert entry["peer"] == "12D3"
        assert entry["api_token"] == REDACTED
        assert "abc" not in out.getvalue()
    finally:
        logging.getLogger().handlers.clear()
