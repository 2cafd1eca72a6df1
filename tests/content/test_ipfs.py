"""Kubo RPC client against an httpx MockTransport standing in for the daemon."""

from __future__ import annotations

import httpx
import pytest

from node.content.cid import cid_of_bytes
from node.content.ipfs import IpfsError, KuboClient, KuboConfig


def _daemon(store: dict[str, bytes], lie: bool = False) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v0/add":
            assert request.url.params["cid-version"] == "1"
            assert request.url.params["raw-leaves"] == "true"
            body = request.read()
            # The multipart body holds the file between its part headers and the boundary.
            data = body.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
            cid = cid_of_bytes(data)
            store[cid] = data
            return httpx.Response(200, json={"Name": "blob", "Hash": cid, "Size": str(len(data))})
        if request.url.path == "/api/v0/cat":
            cid = request.url.params["arg"]
            if cid not in store:
                return httpx.Response(500, json={"Message": "block not found"})
            return httpx.Response(200, content=b"tampered" if lie else store[cid])
        return httpx.Response(404)

    return httpx.MockTransport(handle)


async def test_add_then_cat_round_trip_with_our_cid() -> None:
    store: dict[str, bytes] = {}
    client = KuboClient(KuboConfig(), transport=_daemon(store))
    cid = await client.add(b"scene bytes")
    assert cid == cid_of_bytes(b"scene bytes")  # raw leaves: the same CID as ours
    assert await client.cat(cid) == b"scene bytes"
    await client.aclose()


async def test_cat_refuses_wrong_content_missing_and_oversize() -> None:
    store = {cid_of_bytes(b"x" * 100): b"x" * 100}
    liar = KuboClient(KuboConfig(), transport=_daemon(store, lie=True))
    with pytest.raises(IpfsError, match="does not hash"):
        await liar.cat(cid_of_bytes(b"x" * 100))
    honest = KuboClient(KuboConfig(max_bytes=50), transport=_daemon(store))
    with pytest.raises(IpfsError, match="limit"):
        await honest.cat(cid_of_bytes(b"x" * 100))
    with pytest.raises(IpfsError):
        await honest.cat(cid_of_bytes(b"absent"))


async def test_unreachable_daemon_is_an_ipfs_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = KuboClient(KuboConfig(), transport=httpx.MockTransport(refuse))
    with pytest.raises(IpfsError):
        await client.add(b"data")
