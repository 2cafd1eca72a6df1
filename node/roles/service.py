"""Compose a node's role drivers from its config and plug them into the ``Node``.

Theory of operation. ``run_roles`` builds one ``RoleContext`` (market clock,
outbox, content store served on ``/pictor/content/1.0.0``, chain link when a
chain is configured), starts the drivers the node's roles ask for, and hooks
them in: ``Node.set_market_handler`` for direct messages, the node's gossip
hook for ``JobAnnounce``/``JobCancelled``. Every node can be a requester (the
API's job routes use it); worker and checker run only with their roles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import trio
from eth_account import Account

from ledger.voucher_book import RedeemPolicy
from node.config import NodeConfig
from node.content.net import content_limits, serve_content
from node.content.source import StoreChunkSource
from node.content.store import ContentStore
from node.content.transfer import TransferConfig
from node.log import log_event
from node.record.stakes import CheckerStakes
from node.render.blender import BlenderConfig
from node.render.device_choice import choose_device
from node.render.sandbox import SandboxLimits
from node.render.warm import WarmConfig
from node.roles.capacity import cached_benchmark, probe_capacity
from node.roles.chain import ChainLink, ChainSettings, Payee
from node.roles.checker import CheckerRole
from node.roles.claim_defence import ClaimDefence
from node.roles.common import ACK, REFUSED, MarketClock, Outbox
from node.roles.context import RoleContext, RoleSettings, make_work_root
from node.roles.ports import Chain, RenderKit, blender_kit
from node.roles.requester import RequesterRole
from node.roles.role_metrics import refresh_role_metrics
from node.roles.worker import WorkerRole
from node.runtime import Node
from node.stake_watch import StakeWatch
from protocol import Envelope, NodeId, RemoteProtocolError
from protocol.market import MarketConfig
from protocol.messages import (
    Award,
    AwardDeclined,
    Bid,
    CapacityChallenge,
    ChallengeAnswer,
    CleanSigned,
    CleanSignRequest,
    Dispute,
    Failure,
    FraudSigned,
    FraudSignRequest,
    Heartbeat,
    JobAnnounce,
    JobCancelled,
    LeaseExtended,
    LeaseRevoked,
    Result,
    Role,
    Verdict,
    VerifyRequest,
    Voucher,
    check_announce,
)

if TYPE_CHECKING:
    from trio_typing import TaskStatus

logger = logging.getLogger(__name__)
CONTENT_BUDGET_BYTES = 8 << 30
TO_REQUESTER = (Bid, Heartbeat, Result, Failure, AwardDeclined, Verdict, Dispute)
TO_WORKER = (Award, LeaseExtended, LeaseRevoked, JobCancelled)


@dataclass
class Roles:
    ctx: RoleContext
    requester: RequesterRole
    worker: WorkerRole | None
    checker: CheckerRole | None
    payee: Payee | None
    build: str
    scope: trio.CancelScope
    defence: ClaimDefence | None = None  # the node's answers to claims on what it signed

    def stop(self) -> None:
        self.scope.cancel()

    async def handle(self, envelope: Envelope) -> bytes | None:
        """``ACK``; ``REFUSED`` for good (scored where the sender broke a rule); ``None``
        where the node itself failed or is busy (the sender may retry)."""
        message, sender = envelope.message, envelope.sender.raw
        try:
            if isinstance(message, TO_REQUESTER):
                if not await self.requester.receive(sender, message, envelope.digest, envelope.wire):
                    return None  # busy: the sender asks again (a bid whose advert is on its way)
            elif isinstance(message, JobCancelled) and (self.worker or self.checker):
                self._job_over(sender, message)
            elif isinstance(message, TO_WORKER) and self.worker is not None:
                self.worker.receive(sender, message)
            elif isinstance(message, Voucher):
                if not self._voucher(sender, message):
                    return None  # busy: the requester sends it again
            elif isinstance(message, ChallengeAnswer):
                self.requester.challenger.on_answer(sender, message)
            elif isinstance(message, CapacityChallenge) and self.worker is not None:
                self.worker.on_challenge(sender, message)
            elif isinstance(message, FraudSigned):
                self.requester.slasher.on_fraud_signed(sender, message)
            elif isinstance(message, FraudSignRequest) and self.checker is not None:
                if message.pass_verdict is None:
                    if not self.checker.on_fraud_sign_request(sender, message):
                        return None  # busy: the requester asks again
                elif not self.checker.pass_rechecks.receive(sender, message):
                    return None  # busy, or a job we do not know: the requester asks again
            elif isinstance(message, CleanSignRequest) and self.checker is not None:
                if not self.checker.rechecks.receive(sender, message):
                    return None  # busy, or a job we do not know: the worker asks others
            elif isinstance(message, CleanSigned) and self.defence is not None:
                self.defence.answerer.on_clean_signed(sender, message)
            elif isinstance(message, JobAnnounce) and self.checker is not None:
                # a requester introduces its job to a checker that joined after the announce
                check_announce(message, sender)
                self.checker.on_announce(message)
            elif isinstance(message, VerifyRequest) and self.checker is not None:
                if not self.checker.receive(sender, message):
                    return None  # busy: the sender may try again
            else:
                return REFUSED  # no role here takes it
        except RemoteProtocolError as exc:
            self.ctx.node.gate.refuse(envelope.sender.text, exc)
            return REFUSED
        except Exception as exc:  # our bug, not the peer's: say so and keep running
            log_event(logger, logging.ERROR, "market handler failed", type=message.TYPE,
                      peer=envelope.sender.text, error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            return None
        return ACK

    def _voucher(self, sender: bytes, voucher: Voucher) -> bool:
        """Hand a voucher to whichever role knows its job; False when busy.

        A job neither role knows any more but one we signed work in (a restart forgot its
        spec: node.roles.claim_watch keeps who its requester is) is still ours to be paid
        for: its voucher, from that requester, goes to the payee, which keeps it only if
        the requester's payment address signed it. Before, it was acknowledged and dropped
        and the requester's voucher post stopped (review of stop 36: a worker restarted
        after its last result lost that frame's pay). Anything else is acknowledged and
        dropped: a stranger cannot make the payee store what it likes."""
        job_id = voucher.job_id
        if self.worker is not None and self.worker.machine.knows_job(job_id):
            self.worker.receive(sender, voucher)  # worker pay and checker fees alike
            return True
        if self.checker is not None and job_id in self.checker.specs:
            return self.checker.on_voucher(sender, voucher)
        if self.payee is not None and (address := self._payer_address(sender, job_id)):
            return self.payee.offer(voucher, address, "requester")  # not read on this stream
        return True

    def _payer_address(self, sender: bytes, job_id: bytes) -> bytes | None:
        """The payment address of ``job_id``'s requester when ``sender`` is it, for a job
        we signed work in (node.roles.claim_watch, which a restart keeps); else None."""
        payer = self.defence.payer_of(job_id) if self.defence is not None else None
        return payer[1] if payer is not None and payer[0] == sender else None

    def _job_over(self, sender: bytes, message: JobCancelled) -> None:
        """A requester closed its job (gossip when cancelled or expired, a direct message
        to its payees when it finished): no more work, and no larger voucher, comes."""
        if self.checker is not None:
            self.checker.on_cancelled(sender, message)
        if self.worker is not None:
            self.worker.receive(sender, message)  # raises for a stranger: it is blamed
        if self.payee is not None and (address := self._payer_address(sender, message.job_id)):
            self.payee.job_over(address, message.job_id)  # known after a restart too

    def on_gossip(self, envelope: Envelope) -> None:
        """Raises ``RemoteProtocolError`` for a message illegal in our state: the node
        then blames its signer (a relay could not have known) and stops it there."""
        message, sender = envelope.message, envelope.sender.raw
        try:
            if isinstance(message, JobAnnounce):
                if self.checker is not None:
                    self.checker.on_announce(message)
                if self.worker is not None and sender != self.ctx.me:
                    self.worker.on_announce(sender, message)
            elif isinstance(message, JobCancelled):
                self._job_over(sender, message)
        except RemoteProtocolError:
            raise
        except Exception as exc:  # our bug, not the peer's: say so and keep running
            log_event(logger, logging.ERROR, "gossip handler failed", type=message.TYPE,
                      peer=envelope.sender.text, error=f"{type(exc).__name__}: {exc}")  # fmt: skip


def _payment_address(node: Node, own: bytes, checker: bytes) -> bytes | None:
    """The payment address ``checker``'s capacity advert binds to its key (None: no advert);
    our own verdicts are ours (``own``): a node keeps no advert of itself."""
    if checker == node.key.node_id.raw:
        return own
    seen = node.capacity.get(NodeId(checker).text)
    return None if seen is None else seen.advert.payment.address


def role_settings(config: NodeConfig) -> RoleSettings:
    lease_ms = int(config.lease_s * 1000)
    market = MarketConfig(
        lease_ms=lease_ms, heartbeat_interval_ms=max(1, lease_ms // 4), bid_window_ms=2_000,
        reannounce_interval_ms=10_000, verify_timeout_ms=60_000,
        min_task_timeout_ms=max(lease_ms * 2, 120_000), min_stake_wei=config.min_stake_wei,
        trial_leases=config.trial_leases, plant_rate_ppm=config.plant_rate_ppm,
        checks_per_checker=config.checks_per_checker,
    )  # fmt: skip
    return RoleSettings(
        price_wei_per_ru=config.price_wei_per_ru,
        market=market,
        adversary=config.adversary,
        checker_stake_wei=config.checker_stake_wei,
    )


def chain_link(config: NodeConfig, payment_key: bytes) -> ChainLink | None:
    if not config.chain_rpc_url:
        return None
    settings = ChainSettings(config.chain_rpc_url, config.chain_id, config.escrow_address)
    return ChainLink(settings, payment_key)


@dataclass(frozen=True)
class RolePorts:
    """The roles' renderers and chain (``node.roles.ports``); tests pass fakes."""

    render: RenderKit
    chain: Chain | None


def node_ports(config: NodeConfig, payment_key: bytes, work_root: Path) -> RolePorts:
    """Blender and the configured escrow: what ``pictor node run`` uses (blocks: it may
    ask NVML and Blender which device to render on)."""
    device, why = choose_device(config.render_device)
    log_event(logger, logging.INFO, "render device", device=device, why=why)
    limits = SandboxLimits() if device == "CPU" else SandboxLimits(address_space_bytes=None)
    blender = BlenderConfig(threads=config.render_threads, device=device, limits=limits)
    warm = WarmConfig(config.warm_renders, config.warm_idle_s)
    return RolePorts(blender_kit(blender, work_root, warm), chain_link(config, payment_key))


async def run_roles(
    node: Node,
    config: NodeConfig,
    payment_key: bytes,
    *,
    ports: RolePorts | None = None,
    task_status: TaskStatus[Roles] = trio.TASK_STATUS_IGNORED,
) -> None:
    settings = role_settings(config)
    content = ContentStore(config.data_dir / "content", CONTENT_BUDGET_BYTES)
    serve_content(node.network, StoreChunkSource(content),
                  content_limits(TransferConfig().max_chunk_bytes), node.on_bad_frame)  # fmt: skip
    address = bytes.fromhex(Account.from_key(payment_key).address[2:])
    work_root = make_work_root(config.data_dir)
    if ports is None:
        ports = await trio.to_thread.run_sync(node_ports, config, payment_key, work_root)
    link = ports.chain
    async with trio.open_nursery() as nursery:
        clock = MarketClock(node.wall_ms)  # the node's clock (a test cluster's, restarts included)
        ctx = RoleContext(node, clock, Outbox(node, clock, nursery), content, link, ports.render,
                          payment_key, address, settings, work_root)  # fmt: skip
        payee = None
        if link is not None:  # verdicts count in the public record by checkers' confirmed stake
            stakes = CheckerStakes(link.checker_min_stake_wei, link.stake_of,
                                   partial(_payment_address, node, address))  # fmt: skip
            node.record.book.config = replace(node.record.book.config, checker_counts=stakes.counts)
            nursery.start_soon(stakes.run)
        if link is not None and (Role.WORKER in config.roles or Role.CHECKER in config.roles):
            # Stake matters in the adverts of those who work or check.
            nursery.start_soon(StakeWatch(node.set_confirmed_stake, link.free_stake_wei).run)
            payee = Payee(link, node.store, RedeemPolicy(), settings.redeem_retry_s)
            await payee.load()
            nursery.start_soon(payee.run)
        build = "blender-3.4.1"
        worker = checker = defence = None
        if Role.WORKER in config.roles or Role.CHECKER in config.roles:
            identity = await ports.render.frames.identify()
            build = identity.build
            # One watch on what our payment key signs, for both roles: a checker-only node
            # answers claims on its passes with the tolerance (no frame of its own).
            device = identity.device_class if Role.WORKER in config.roles else ""
            defence = ClaimDefence(ctx, lambda: device, checker=Role.CHECKER in config.roles)
            await nursery.start(defence.run)
            if Role.WORKER in config.roles:
                speed = await trio.to_thread.run_sync(cached_benchmark, config.data_dir,
                                                      identity.build, identity.device_class)  # fmt: skip
                worker = WorkerRole(ctx, payee, identity.build, identity.device_class, *speed,
                                    defence=defence)  # fmt: skip
                await nursery.start(worker.run)
            if Role.CHECKER in config.roles:
                checker = CheckerRole(ctx, payee, defence)
                await nursery.start(checker.run)
            node.set_capacity(await probe_capacity(config.data_dir, identity.build,
                                                   identity.device_class,
                                                   settings.price_wei_per_ru,
                                                   worker.free_slots if worker else lambda: 0))  # fmt: skip
        requester = RequesterRole(ctx)
        node.set_advert_keeper(requester.keeps_advert)
        roles = Roles(ctx, requester, worker, checker, payee, build, nursery.cancel_scope, defence)
        node.set_market_handler(roles.handle)
        node.set_gossip_hook(roles.on_gossip)
        await nursery.start(requester.run)
        log_event(logger, logging.INFO, "roles started", roles=[r.value for r in config.roles],
                  chain=bool(link))  # fmt: skip
        refresh = partial(refresh_role_metrics, roles)
        node.metrics.refreshers.append(refresh)
        try:
            task_status.started(roles)
            await trio.sleep_forever()
        finally:
            node.metrics.refreshers.remove(refresh)
