"""How amounts, deposits, prices and ended jobs read on the explorer (issue 19 item 10)."""

from __future__ import annotations

import httpx

from explorer.indexer.db import IndexDb
from explorer.indexer.rows import apply_chain_event
from explorer.web.filters import eth, tx_hash
from ledger.follower import ChainEvent
from protocol import NodeKey
from protocol.messages import Escrow, JobCancelled
from tests.explorer import factory as f
from tests.explorer.conftest import put

REQUESTER_ADDRESS = "0x" + "01" * 20


def chain_event(name: str, job_id: bytes, amount: int, block: int, tx: bytes) -> ChainEvent:
    return ChainEvent(name, {"job_id": job_id, "requester": REQUESTER_ADDRESS, "amount": amount},
                      block_number=block, log_index=0, block_hash=b"\x00" * 32, tx_hash=tx)  # fmt: skip


def test_amounts_are_integer_ether() -> None:
    assert str(eth(880_000_000_000_000_000)) == "0.88 ETH"
    assert str(eth("1760000000000000000")) == "1.76 ETH"
    # the float-made budget 0.88 ETH + 128 wei: rounded in integers, marked, exact on hover
    assert str(eth(880_000_000_000_000_128)) == (
        '<span title="880000000000000128 wei">≈0.88 ETH</span>'
    )
    assert str(eth(5 * 10**30)) == "5000000000000 ETH"
    assert str(eth(None)) == "0 ETH"
    assert tx_hash("0x" + "00" * 32) == "" and tx_hash("") == ""
    assert tx_hash("0x" + "ab" * 32) == "0x" + "ab" * 32


async def test_zero_hash_deposit_is_not_a_link_and_the_chain_deposit_is(
    index: IndexDb, client: httpx.AsyncClient
) -> None:
    requester = NodeKey.generate()
    announce = f.job(requester, frames=4, escrow=Escrow(31337, b"\x02" * 20, bytes(32)))
    await put(index, f.envelope(requester, announce))
    job_hex = announce.job_id.hex()
    page = (await client.get(f"/jobs/{job_hex}")).text
    assert "/tx/0x" + "00" * 32 not in page
    assert "no deposit seen on chain yet" in page
    deposit_tx = b"\x0d" * 32
    await index.write(lambda tx: apply_chain_event(
        tx, chain_event("Deposited", announce.job_id, 880_000_000_000_000_128, 5, deposit_tx)))  # fmt: skip
    page = (await client.get(f"/jobs/{job_hex}")).text
    assert f'<a href="/tx/0x{deposit_tx.hex()}">' in page
    assert "≈0.88 ETH" in page and "0.880000000000000128" not in page


async def test_refunded_and_cancelled_jobs_are_not_running(
    index: IndexDb, client: httpx.AsyncClient
) -> None:
    requester = NodeKey.generate()
    refunded, cancelled = f.job(requester, frames=2), f.job(requester, frames=3)
    await put(index, f.envelope(requester, refunded), f.envelope(requester, cancelled),
              f.envelope(requester, JobCancelled(cancelled.job_id, "cancelled by the requester")))  # fmt: skip
    await index.write(lambda tx: apply_chain_event(
        tx, chain_event("Refunded", refunded.job_id, 10**17, 9, b"\x0e" * 32)))  # fmt: skip
    status = {}
    for announce in (refunded, cancelled):
        api = (await client.get(f"/api/v1/jobs/{announce.job_id.hex()}")).json()
        status[announce] = api["status"]
    assert status[refunded] == "ended (refunded)"
    assert status[cancelled] == "cancelled"


async def test_median_price_is_formatted_and_docs_load_nothing_from_a_cdn(
    index: IndexDb, client: httpx.AsyncClient
) -> None:
    worker = NodeKey.generate()
    await put(index, f.envelope(worker, f.advert(worker, price_wei_per_ru=10**16)))
    page = (await client.get("/")).text
    assert 'id="median-price">0.01 ETH</p>' in page
    assert (await client.get("/docs")).status_code == 404  # Swagger UI would come from a CDN
    assert (await client.get("/redoc")).status_code == 404
    assert (await client.get("/openapi.json")).status_code == 200
    for path in ("/", "/jobs", "/nodes"):
        html = (await client.get(path)).text
        assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
