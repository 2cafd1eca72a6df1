"""The indexer fed by a real local network: libp2p nodes on loopback + the Escrow on py-evm.

Two publishing nodes use the node's own libp2p code (Noise, yamux, gossipsub)
and sign real envelopes; the explorer joins through one of them as a
bootstrap peer. A real Escrow contract on the embedded chain takes a deposit
and a voucher redeem. The explorer is then restarted on the same index: no
event is lost or indexed twice, and a redeem made while it was down appears.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from eth_account import Account
from libp2p.peer.id import ID

from explorer.service import Explorer, ExplorerConfig, run_explorer
from ledger.backends import EmbeddedChain, embedded
from ledger.client import EscrowClient
from ledger.deploy import EscrowParams, deploy_escrow
from ledger.tx import TxConfig, TxSender
from ledger.vouchers import Voucher, sign
from node.net.libp2p_net import Libp2pNetwork, Libp2pSettings, open_libp2p_network
from protocol import NodeKey
from protocol.messages import Escrow
from protocol.topics import CAPACITY_TOPIC, JOBS_TOPIC
from tests.explorer import factory as f

FAST_TX = TxConfig(receipt_timeout_s=30, receipt_poll_s=0.01, retry_backoff_s=0.01)
ETHER = 10**18


@asynccontextmanager
async def explorer_running(config: ExplorerConfig, w3: object) -> AsyncIterator[Explorer]:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        explorer: Explorer = await nursery.start(
            lambda task_status: run_explorer(config, stop, w3=w3, task_status=task_status)
        )
        try:
            yield explorer
        finally:
            stop.set()


async def wait_subscribed(net: Libp2pNetwork, peer: str) -> None:
    for topic in (CAPACITY_TOPIC, JOBS_TOPIC):
        await net.pubsub.wait_for_subscription(ID.from_base58(peer), topic)


async def wait_meshed(net: Libp2pNetwork, peer: str) -> None:
    """Relaying needs ``peer`` in ``net``'s gossipsub mesh, not just subscribed."""
    for topic in (CAPACITY_TOPIC, JOBS_TOPIC):
        await net.pubsub.router.wait_for_mesh(ID.from_base58(peer), topic, timeout=20)


class Chain:
    def __init__(self, chain: EmbeddedChain) -> None:
        self.chain = chain
        self.requester_key = chain.funded_keys[0]
        self.worker_key = chain.funded_keys[1]
        sender = TxSender(chain.w3, self.requester_key, FAST_TX)
        self.escrow = deploy_escrow(sender, EscrowParams(grace_s=600))
        self.requester = EscrowClient(sender, self.escrow)

    @property
    def worker_address(self) -> bytes:
        return bytes.fromhex(Account.from_key(self.worker_key).address[2:])

    def redeem(self, job_id: bytes, cumulative_wei: int) -> str:
        unsigned = Voucher(
            self.chain.chain_id,
            bytes.fromhex(self.escrow[2:]),
            self.requester.account,
            job_id,
            self.worker_address,
            cumulative_wei,
        )
        receipt = self.requester.redeem(sign(unsigned, self.requester_key))
        return "0x" + bytes(receipt["transactionHash"]).hex()


@pytest.mark.slow
async def test_real_nodes_and_chain_show_the_right_counts(tmp_path: Path) -> None:
    with embedded() as dev:
        chain = Chain(dev)
        requester_key, worker_key = NodeKey.generate(), NodeKey.generate()
        deposit = chain.requester.deposit(b"\x00" * 32, ETHER, chain.chain.timestamp_s() + 3600)
        # The real job id is only known once the spec exists; deposit for it next.
        announce = f.job(
            requester_key,
            frames=3,
            requester_address=bytes.fromhex(Account.from_key(chain.requester_key).address[2:]),
            escrow=Escrow(
                dev.chain_id, bytes.fromhex(chain.escrow[2:]), bytes(deposit["transactionHash"])
            ),
        )
        job_id = announce.job_id
        chain.requester.deposit(job_id, ETHER, chain.chain.timestamp_s() + 3600)
        chain.requester.open_lanes(job_id, [(chain.worker_address, ETHER // 2)])
        first_tx = chain.redeem(job_id, ETHER // 10)

        config = ExplorerConfig(
            db_url=str(tmp_path / "index.db"),
            listen_addrs=("/ip4/127.0.0.1/tcp/0",),
            contract=chain.escrow,
            chain_rpc="",
            confirmations=0,
            chain_poll_s=0.2,
            port=0,
            stats_interval_s=0.5,
        )
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(open_libp2p_network(worker_key, Libp2pSettings()))
            b = await stack.enter_async_context(
                open_libp2p_network(requester_key, Libp2pSettings())
            )
            for net in (a, b):  # real nodes subscribe, so they also relay each other's gossip
                for topic in (CAPACITY_TOPIC, JOBS_TOPIC):
                    await net.subscribe(topic, lambda *_: True)
            await b.connect(a.listen_addrs()[0])
            config = ExplorerConfig(**{**config.__dict__, "bootstrap": (a.listen_addrs()[0],)})
            with trio.fail_after(60):
                async with explorer_running(config, dev.w3) as explorer:
                    peer = explorer.gossip.network.local_peer
                    await wait_subscribed(a, peer)
                    await wait_subscribed(b, a.local_peer)
                    await wait_meshed(a, peer)
                    await a.publish(
                        CAPACITY_TOPIC,
                        f.sign(worker_key, f.advert(worker_key, gpus=("RTX 4090", "RTX 4090"))),
                    )
                    await b.publish(
                        CAPACITY_TOPIC, f.sign(requester_key, f.advert(requester_key, gpus=()))
                    )
                    await b.publish(JOBS_TOPIC, f.sign(requester_key, announce))
                    await explorer.gossip.wait_indexed(3)
                    assert explorer.chain is not None
                    await explorer.chain.wait_polled(
                        lambda: explorer.chain is not None and explorer.chain.indexed >= 3
                    )
                    async with httpx.AsyncClient(base_url=explorer.url) as http:
                        o = (await http.get("/api/v1/overview")).json()
                        job = (await http.get(f"/api/v1/jobs/{job_id.hex()}")).json()
                        tx = (await http.get(f"/api/v1/tx/{first_tx}")).json()
                        node_page = await http.get(f"/nodes/{worker_key.node_id.text}")
        assert o["nodes_online"] == 2 and o["gpus_online"] == 2 and o["jobs_running"] == 1
        assert o["gpus_by_model"] == [{"model": "RTX 4090", "count": 2}]
        assert job["frames_by_state"] == {"open": 3}
        assert [e["name"] for e in job["transactions"]] == ["Deposited", "LaneFunded", "Redeemed"]
        assert job["deposited_wei"] == str(ETHER) and job["redeemed_wei"] == str(ETHER // 10)
        assert tx["events"][0]["name"] == "Redeemed"
        assert node_page.status_code == 200 and "RTX 4090" in node_page.text

        # Down for a while: a second redeem happens; then the explorer restarts on the same index.
        second_tx = chain.redeem(job_id, ETHER // 4)
        dev.mine(1)
        with trio.fail_after(30):
            async with explorer_running(config, dev.w3) as explorer:
                assert explorer.chain is not None
                await explorer.chain.wait_polled(
                    lambda: explorer.chain is not None and explorer.chain.indexed >= 1
                )
                async with httpx.AsyncClient(base_url=explorer.url) as http:
                    job = (await http.get(f"/api/v1/jobs/{job_id.hex()}")).json()
                    assert (await http.get(f"/api/v1/tx/{second_tx}")).status_code == 200
        names = [e["name"] for e in job["transactions"]]
        assert names == ["Deposited", "LaneFunded", "Redeemed", "Redeemed"]  # no gap, no duplicate
        assert job["redeemed_wei"] == str(ETHER // 4)  # cumulative: 0.1 then 0.15 more
