"""Fixtures: one deployed escrow per chain backend, reset between tests.

Each backend (py-evm always; anvil when its binary is installed, marked slow)
starts once per session and deploys the contracts once; every test runs
inside a chain snapshot that is reverted afterwards, and gets fresh clients so
no nonce counter survives the revert.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account

from ledger.anvil import find_anvil, start_anvil
from ledger.backends import DevChain, embedded
from ledger.client import EscrowClient
from ledger.deploy import EscrowParams, deploy_escrow, deploy_test_token
from ledger.tx import TxConfig, TxSender
from ledger.vouchers import Voucher, sign

GRACE_S = 600
UNBONDING_S = 3600
QUORUM = 2
CHECKER_MIN_STAKE_WEI = 10**18
ETHER = 10**18
SLASH_CAP_WEI = ETHER // 2
CHALLENGE_S = 1800
# Chain time starts here so py-evm never switches to wall-clock block times (year 2100).
FAR_FUTURE_S = 4_102_444_800
FAST_TX = TxConfig(receipt_timeout_s=30, receipt_poll_s=0.01, retry_backoff_s=0.01)


@dataclass
class Deployed:
    chain: DevChain
    escrow: str
    token: str


@dataclass
class Env:
    """Named parties on a deployed escrow. Keys: 0 deployer/requester, 1-3 workers,
    4-7 and 9 checkers, 8 outsider."""

    chain: DevChain
    escrow: str
    token: str
    requester: EscrowClient
    workers: list[EscrowClient]
    checkers: list[EscrowClient]
    outsider: EscrowClient

    @property
    def contract_bytes(self) -> bytes:
        return bytes.fromhex(self.escrow[2:])

    def key_of(self, client: EscrowClient) -> bytes:
        for key in self.chain.funded_keys:
            if Account.from_key(key).address == client.sender.address:
                return key
        raise KeyError(client.sender.address)

    def voucher(self, job_id: bytes, payee: EscrowClient, cumulative_wei: int,
                signer: EscrowClient | None = None, chain_id: int | None = None,
                requester: EscrowClient | None = None) -> Voucher:  # fmt: skip
        """A voucher of ``requester``'s job (default: env.requester), signed by ``signer``
        (default: that requester)."""
        owner = requester or self.requester
        unsigned = Voucher(chain_id or self.chain.chain_id, self.contract_bytes, owner.account,
                           job_id, payee.account, cumulative_wei)  # fmt: skip
        return sign(unsigned, self.key_of(signer or owner))

    def open_job(self, budget_wei: int = ETHER, lifetime_s: int = 3600,
                 lanes: dict[int, int] | None = None) -> tuple[bytes, int]:  # fmt: skip
        """A fresh job of env.requester; ``lanes`` funds workers[i] with the amount."""
        job_id, deadline_s = os.urandom(32), self.deadline_in(lifetime_s)
        self.requester.deposit(job_id, budget_wei, deadline_s)
        if lanes:
            fundings = [(self.workers[i].account, amount) for i, amount in lanes.items()]
            self.requester.open_lanes(job_id, fundings)
        return job_id, deadline_s

    def deadline_in(self, seconds: int) -> int:
        return self.chain.timestamp_s() + seconds


def _deploy(chain: DevChain) -> Deployed:
    sender = TxSender(chain.w3, chain.funded_keys[0], FAST_TX)
    params = EscrowParams(GRACE_S, UNBONDING_S, QUORUM, CHECKER_MIN_STAKE_WEI, SLASH_CAP_WEI,
                          CHALLENGE_S)  # fmt: skip
    return Deployed(chain, deploy_escrow(sender, params), deploy_test_token(sender))


@pytest.fixture(scope="session")
def embedded_deployed() -> Iterator[Deployed]:
    with embedded(genesis_timestamp_s=FAR_FUTURE_S) as chain:
        yield _deploy(chain)


@pytest.fixture(scope="session")
def anvil_deployed() -> Iterator[Deployed]:
    if find_anvil() is None:
        pytest.skip(
            "anvil binary missing: npm install --prefix .cache/npm @foundry-rs/anvil "
            f"(or set PICTOR_ANVIL; now {os.environ.get('PICTOR_ANVIL')!r})"
        )
    with start_anvil() as chain:
        chain.step_time_per_block(1)  # same block clock as py-evm: parent + 1 s
        yield _deploy(chain)


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.slow)])
def deployed(request: pytest.FixtureRequest) -> Iterator[Deployed]:
    dep: Deployed = request.getfixturevalue(f"{request.param}_deployed")
    snapshot = dep.chain.snapshot()
    yield dep
    dep.chain.revert(snapshot)


@pytest.fixture
def embedded_only(embedded_deployed: Deployed) -> Iterator[Deployed]:
    snapshot = embedded_deployed.chain.snapshot()
    yield embedded_deployed
    embedded_deployed.chain.revert(snapshot)


def make_env(dep: Deployed) -> Env:
    def client(i: int) -> EscrowClient:
        return EscrowClient(TxSender(dep.chain.w3, dep.chain.funded_keys[i], FAST_TX), dep.escrow)

    return Env(dep.chain, dep.escrow, dep.token, client(0), [client(i) for i in (1, 2, 3)],
               [client(i) for i in (4, 5, 6, 7, 9)], client(8))  # fmt: skip


@pytest.fixture
def env(deployed: Deployed) -> Env:
    return make_env(deployed)


@pytest.fixture
def env_fast(embedded_only: Deployed) -> Env:
    """py-evm only: for tests about logic rather than backends."""
    return make_env(embedded_only)
