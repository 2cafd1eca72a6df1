"""A small synchronous client of one node's local API (CLI, devnet, tests, bench)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from node.config import load_config
from node.keyfile import read_secret_file


class ApiError(RuntimeError):
    """The node refused a request or is not reachable; the message says which."""


@dataclass(frozen=True)
class NodeApi:
    base_url: str
    token: str
    data_dir: Path | None = None  # to say how to start the node when it is not reachable

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> NodeApi:
        config = load_config(data_dir)
        token = read_secret_file(config.api_token_path)
        addr = config.api_addr_path
        base = addr.read_text().strip() if addr.exists() else f"http://127.0.0.1:{config.api_port}"
        return cls(base, token, data_dir)

    def _call(self, method: str, path: str, timeout_s: float, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        # A plain http:// URL has no TLS to verify: without this, httpx loads the CA bundle
        # into a TLS context (~50 ms of CPU) on every call, and a poll every 0.2 s took a
        # fifth of a core beside the node it waits for. Anything else is verified.
        verify = not self.base_url.lower().startswith("http://")
        try:
            r = httpx.request(method, self.base_url + path, headers=headers,
                              timeout=timeout_s, verify=verify, **kw)  # fmt: skip
        except httpx.TransportError as exc:
            raise ApiError(f"node not reachable at {self.base_url} ({exc}); {self.start_hint()}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise ApiError(f"{method} {path}: {r.status_code} {detail}")
        return r.json()

    def start_hint(self) -> str:
        """The next command to run when the node does not answer."""
        where = f" --data-dir {self.data_dir}" if self.data_dir else ""
        return (f"start it with `pictor node run{where}`, or run `pictor devnet up` for a "
                "local test network")  # fmt: skip

    def get(self, path: str, timeout_s: float = 10.0) -> Any:
        return self._call("GET", path, timeout_s)

    def post(self, path: str, body: dict[str, Any] | None = None, timeout_s: float = 600.0) -> Any:
        return self._call("POST", path, timeout_s, json=body or {})

    def job(self, job_id: str, wait_s: float = 0.0) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/client/jobs/{job_id}?wait_s={wait_s}",
                                          timeout_s=wait_s + 10)  # fmt: skip
        return result

    def wait_job(self, job_id: str, timeout_s: float, on_change: Any = None) -> dict[str, Any]:
        """Long-poll the job until it has an outcome; ``TimeoutError`` past ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"job {job_id[:16]} not finished within {timeout_s} s")
            job = self.job(job_id, wait_s=min(5.0, left))
            if on_change is not None:
                on_change(job)
            if job["outcome"] is not None:
                return job

    def wait_until(self, path: str, predicate: Any, timeout_s: float) -> Any:
        """Poll ``path`` (a short interval, bounded by ``timeout_s``) until ``predicate(json)``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = self.get(path)
                if predicate(value):
                    return value
            except ApiError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} did not reach the expected state in {timeout_s} s")
            time.sleep(0.2)
