"""Optional IPFS: Kubo's RPC API over httpx, when a daemon is configured.

``ipfshttpclient`` is unmaintained and refuses current Kubo, so we speak the
two calls we need ourselves: ``add`` (CIDv1, raw leaves, so content up to one
IPFS chunk gets exactly our CID) and ``cat`` (streamed, size-bounded, and
checked against the CID's sha2-256 when the CID is one of ours: a daemon is
trusted no more than a peer).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import httpx

from node.content.cid import CidError, digest_of


class IpfsError(Exception):
    """The daemon is unreachable, refused the call, or returned wrong content."""


@dataclass(frozen=True)
class KuboConfig:
    api_url: str = "http://127.0.0.1:5001"
    timeout_s: float = 60.0
    max_bytes: int = 8 << 30


class KuboClient:
    def __init__(self, config: KuboConfig, transport: httpx.AsyncBaseTransport | None = None):
        self._config = config
        self._client = httpx.AsyncClient(
            base_url=config.api_url.rstrip("/") + "/api/v0",
            timeout=config.timeout_s,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def add(self, data: bytes, pin: bool = True) -> str:
        params = {"cid-version": "1", "raw-leaves": "true", "pin": str(pin).lower()}
        try:
            response = await self._client.post(
                "/add", params=params, files={"file": ("blob", data)}
            )
            response.raise_for_status()
            cid = str(response.json()["Hash"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise IpfsError(f"ipfs add failed: {exc}") from exc
        return cid

    async def cat(self, cid: str) -> bytes:
        """The content of ``cid``; verified when it is a raw sha2-256 CID."""
        try:
            expected: bytes | None = digest_of(cid)
        except CidError:
            expected = None  # a dag-pb root (large file added by IPFS): Kubo verified its blocks
        hasher, parts, size = hashlib.sha256(), [], 0
        try:
            async with self._client.stream("POST", "/cat", params={"arg": cid}) as response:
                response.raise_for_status()
                async for block in response.aiter_bytes():
                    size += len(block)
                    if size > self._config.max_bytes:
                        raise IpfsError(f"{cid} is over the {self._config.max_bytes} byte limit")
                    hasher.update(block)
                    parts.append(block)
        except httpx.HTTPError as exc:
            raise IpfsError(f"ipfs cat {cid} failed: {exc}") from exc
        if expected is not None and hasher.digest() != expected:
            raise IpfsError(f"ipfs returned content that does not hash to {cid}")
        return b"".join(parts)
