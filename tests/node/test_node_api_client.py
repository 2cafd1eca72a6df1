"""``NodeApi``, the synchronous client the CLI, the devnet, the tests and the benches poll
a node's local API with.

A poll must cost next to nothing on the caller's side: ``wait_until`` asks every 0.2 s
while a job runs on the same cores. Each call used to build a TLS context for a plain
``http://`` URL (httpx's default client: about 50 ms of CPU, the CA bundle loaded each
time), which made bench/sim_fidelity.py's harness take 0.1-0.3 of a core beside the devnet
it measures (py-spy: 85 % of its samples in ``ssl.create_default_context``).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from node.devnet.api import ApiError, NodeApi


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.headers.get("Authorization") != "Bearer t0ken":
            self._answer(401, {"detail": "bad token"})
        else:
            self._answer(200, {"path": self.path})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def tls_contexts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry for each TLS context built (httpx builds them with this call)."""
    built: list[int] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kw: Any) -> ssl.SSLContext:
        built.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    return built


def test_a_plain_http_call_builds_no_tls_context(base_url: str, tls_contexts: list[int]) -> None:
    api = NodeApi(base_url, "t0ken")
    for _ in range(3):
        assert api.get("/v1/status") == {"path": "/v1/status"}
    assert api.wait_until("/v1/x", lambda v: v["path"] == "/v1/x", 5) == {"path": "/v1/x"}
    assert tls_contexts == []


def test_a_refusal_and_an_unreachable_node_say_what_to_do(base_url: str) -> None:
    with pytest.raises(ApiError, match="401 bad token"):
        NodeApi(base_url, "wrong").get("/v1/status")
    with pytest.raises(ApiError, match=r"not reachable.*pictor node run"):
        NodeApi("http://127.0.0.1:9", "t0ken").get("/v1/status")


def test_an_https_url_keeps_certificate_checks(tls_contexts: list[int]) -> None:
    """TLS is verified where there is TLS: the TLS context is built for an https URL."""
    for url in ("https://127.0.0.1:9", "HTTPS://127.0.0.1:9"):  # any other scheme: verified
        tls_contexts.clear()
        with pytest.raises(ApiError, match="not reachable"):
            NodeApi(url, "t0ken").get("/v1/status")
        assert tls_contexts, url
