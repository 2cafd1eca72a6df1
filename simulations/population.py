"""Who is in the network, and how that changes: initial nodes with their
behaviours, churn (join, leave, crash, restart), sybil identities, and the
background traffic of capacity adverts.

Behaviours are dealt from exact counts (``round(n × fraction)``) and shuffled
with the run's RNG, so a scenario's 20 % cheaters are exactly 20 %.
A crashed node restarts after ``churn.restart_after_s`` with the same key and
its persisted vouchers, but a fresh machine: its in-flight work is lost.
Churn stops when the liveness phase begins; pending restarts still happen.

Capacity adverts are gossip that no market machine consumes yet, so they are
not delivered one by one (at 10,000 nodes every 30 s that would be most of the
run's events); their messages and bytes are added per sample interval from
the real encoded size of one advert.
"""

from __future__ import annotations

from protocol.codec import packb, to_wire
from protocol.identity import PaymentBinding
from protocol.messages import CapacityAdvert, GpuInfo, Role, Voucher
from simulations.checkers import CheckerDriver
from simulations.models import MS_PER_HOUR, draw_gpu, next_arrival_ms
from simulations.requesters import RENDERER_BUILD, RequesterDriver
from simulations.workers import WorkerDriver
from simulations.world import ENVELOPE_OVERHEAD_BYTES, SimNode, World


class Population:
    def __init__(self, world: World) -> None:
        self.world = world
        self.requesters: list[RequesterDriver] = []
        self._persisted: dict[int, dict[bytes, Voucher]] = {}  # node index -> vouchers
        self._churn_on = True
        self._advert_bytes = 0
        world.sybil_caught = self._replace_sybil

    def populate(self) -> None:
        world, s = self.world, self.world.scenario
        adv = s.adversaries
        n = s.nodes.workers
        roles = (["cheater"] * round(n * adv.cheater_fraction) + ["lazy"] * round(n * adv.lazy_fraction)
                 + ["sniper"] * round(n * adv.sniper_fraction))  # fmt: skip
        roles = (roles + ["honest"] * n)[:n] + ["sybil"] * adv.sybil_identities
        roles += ["flood"] * adv.flood_identities
        world.loop.rng.shuffle(roles)
        for behaviour in roles:
            node = self.spawn("worker", behaviour)
            if s.nodes.worker_stake_wei and behaviour != "flood":
                world.chain.stake(node.address, s.nodes.worker_stake_wei)
        c = s.nodes.checkers
        checker_roles = (["colluder"] * round(c * adv.colluding_checker_fraction)
                         + ["lazy_checker"] * round(c * adv.lazy_checker_fraction)
                         + ["lazy_pair"] * adv.lazy_pair_checkers
                         + ["honest"] * c)  # fmt: skip
        for behaviour in checker_roles[:c]:
            checker = self.spawn("checker", behaviour)
            if s.nodes.checker_stake_wei:
                world.chain.stake(checker.address, s.nodes.checker_stake_wei)
        r = s.nodes.requesters
        requester_roles = (["free_rider"] * round(r * adv.free_rider_fraction)
                           + ["clawback"] * round(r * adv.clawback_fraction) + ["honest"] * r)  # fmt: skip
        funds_wei = 10**30  # requesters are never the bottleneck; budgets are
        for behaviour in requester_roles[:r]:
            node = self.spawn("requester", behaviour)
            world.chain.mint(node.address, funds_wei)
        self._advert_bytes = self._measure_advert()

    def spawn(self, role: str, behaviour: str) -> SimNode:
        world = self.world
        gpu = draw_gpu(world.loop.rng, world.scenario.rendering) if role != "requester" else None
        node = world.add_node(role, behaviour, gpu)
        self._persisted[node.index] = {}
        self._boot(node)
        return node

    def _boot(self, node: SimNode) -> None:
        world = self.world
        world.set_online(node, True)
        if node.role == "worker":
            node.driver = WorkerDriver(world, node, self._persisted[node.index])
            world.metrics.online_delta(world.loop.now_ms, +1)
        elif node.role == "checker":
            node.driver = CheckerDriver(world, node, self._persisted[node.index])
        else:
            driver = RequesterDriver(world, node)
            node.driver = driver
            self.requesters.append(driver)

    def _halt(self, node: SimNode) -> None:
        world = self.world
        if node.driver is not None:
            node.driver.stop()
            node.driver = None
        world.set_online(node, False)
        if node.role == "worker":
            world.metrics.online_delta(world.loop.now_ms, -1)

    # ---- churn: Poisson processes over workers and checkers ----

    def start_churn(self) -> None:
        churn = self.world.scenario.churn
        for kind, rate in (
            ("join", churn.join_per_hour),
            ("leave", churn.leave_per_hour),
            ("crash", churn.crash_per_hour),
        ):
            self._next_churn(kind, rate)
        for at_s in churn.kill_workers_at_s:
            self.world.loop.call_at(int(at_s * 1000), self._kill, None, "kill")

    def _kill(self, _: object) -> None:
        """A scripted kill: the first worker rendering (else the first online), for good."""
        online = [n for n in self.world.workers if n.online]
        busy = [n for n in online if isinstance(n.driver, WorkerDriver) and n.driver.rendering]
        if busy or online:
            node = (busy or online)[0]
            self.world.loop.note("kill", f"worker#{node.index}")
            self.world.metrics.crashes += 1
            self._halt(node)

    def stop_churn(self) -> None:
        self._churn_on = False

    def _next_churn(self, kind: str, per_hour: float) -> None:
        gap_ms = next_arrival_ms(self.world.loop.rng, per_hour)
        if gap_ms is not None:
            self.world.loop.call_later(gap_ms, self._churn, (kind, per_hour), kind)

    def _churn(self, arg: tuple[str, float]) -> None:
        kind, per_hour = arg
        if not self._churn_on:
            return
        world = self.world
        metrics = world.metrics
        if kind == "join":
            metrics.joins += 1
            self.spawn("worker", "honest")
        else:
            pool = [n for n in world.workers + world.checkers
                    if n.online and n.behaviour not in ("sybil", "flood")]  # fmt: skip
            if pool:
                node = world.loop.rng.choice(pool)
                world.loop.note(kind, f"{node.role}#{node.index}")
                self._halt(node)
                if kind == "crash":
                    metrics.crashes += 1
                    delay_ms = world.scenario.churn.restart_after_s * 1000
                    world.loop.call_later(delay_ms, self._restart, node, "restart")
                else:
                    metrics.leaves += 1
        self._next_churn(kind, per_hour)

    def _restart(self, node: SimNode) -> None:
        if not node.online:
            self._boot(node)

    def _replace_sybil(self, node_id: bytes) -> None:
        """A blocklisted sybil (or flood) identity is dropped and a fresh key takes its place."""
        node = self.world.by_id.get(node_id)
        if node is None or node.behaviour not in ("sybil", "flood") or not node.online:
            return
        self._halt(node)
        self.spawn("worker", node.behaviour)

    # ---- background gossip ----

    def count_adverts(self, span_ms: int) -> None:
        """Add the capacity adverts gossiped during ``span_ms`` to the traffic."""
        world = self.world
        online = sum(1 for n in world.workers + world.checkers if n.online)
        per_node = span_ms / (world.scenario.network.advert_interval_s * 1000)
        copies = int(online * per_node) * world.scenario.network.gossip_fanout
        world.net.stats.gossip_messages += copies
        world.net.stats.gossip_bytes += copies * self._advert_bytes

    def _measure_advert(self) -> int:
        if not self.world.nodes:
            return 0
        node = self.world.nodes[0]
        binding = PaymentBinding.create(node.key, bytes(range(1, 33)))  # size only
        advert = CapacityAdvert(
            (Role.WORKER,), (GpuInfo("rtx-3060", 12_288),), (RENDERER_BUILD,), 1000, 10**12,
            0, binding, ("/ip4/203.0.113.7/udp/4001/quic-v1",), 1,
        )  # fmt: skip
        return len(packb(to_wire(advert))) + ENVELOPE_OVERHEAD_BYTES


__all__ = ["MS_PER_HOUR", "Population"]
