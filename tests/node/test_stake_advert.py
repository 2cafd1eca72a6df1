"""A node's adverts state only the stake the chain confirms: read from the real escrow
(py-evm), 0 without a chain, and back to 0 once the chain has not answered for too long."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing
from eth_account import Account
from node_helpers import make_config, wall_ms

from ledger.backends import embedded
from ledger.client import EscrowClient
from ledger.deploy import EscrowParams, deploy_escrow
from ledger.errors import ChainUnreachable
from ledger.tx import TxSender
from node.net.memory import MemoryHub
from node.runtime import Node
from node.stake_watch import StakeWatch
from node.store import open_store
from protocol import NodeKey

ETHER = 10**18


async def test_advert_states_the_stake_the_chain_confirms(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    with embedded() as chain:
        escrow = deploy_escrow(TxSender(chain.w3, chain.funded_keys[0]), EscrowParams())
        payment_key = chain.funded_keys[1]
        account = EscrowClient(TxSender(chain.w3, payment_key), escrow)
        outage = False

        async def read_stake_wei() -> int:  # what ChainLink.free_stake_wei does, sans thread
            if outage:
                raise ChainUnreachable("chain down")
            return account.stake_of().free_wei

        config = make_config(tmp_path)
        async with MemoryHub().open("n1") as net, open_store(config.db_path) as store:
            node = Node(config, NodeKey.generate(), payment_key, net, store, wall_ms=wall_ms,
                        nonce=lambda: 1)  # fmt: skip
            assert node.make_advert().stake_wei == 0  # no chain has confirmed anything
            watch = StakeWatch(node.set_confirmed_stake, read_stake_wei, refresh_s=60, max_age_s=300)
            await watch.refresh()
            assert node.make_advert().stake_wei == 0  # the chain says 0

            account.send(account.calls.stake(2 * ETHER))
            await watch.refresh()
            assert node.make_advert().stake_wei == 2 * ETHER
            account.send(account.calls.request_unbond(ETHER // 2))  # unbonding is not at stake
            await watch.refresh()
            assert node.make_advert().stake_wei == 3 * ETHER // 2

            outage = True
            await trio.sleep(299)
            await watch.refresh()  # a hiccup: the last reading (299 s old) stands
            assert node.make_advert().stake_wei == 3 * ETHER // 2
            await trio.sleep(2)
            await watch.refresh()  # nothing confirms it any more
            assert node.make_advert().stake_wei == 0
            outage = False
            await watch.refresh()
            assert node.make_advert().stake_wei == 3 * ETHER // 2
            # The advert is the node's own payment account's stake, not anyone else's.
            assert node.make_advert().payment.address == bytes.fromhex(
                Account.from_key(payment_key).address[2:]
            )
