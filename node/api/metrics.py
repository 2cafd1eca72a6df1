"""Prometheus metrics for one node, on its own ``CollectorRegistry``.

A per-node registry (not prometheus-client's global one) so several nodes in
one process — the tests and the benchmark run many — keep separate counts.

Counters move where things happen (messages, bans); gauges that mirror state
held elsewhere (tasks, jobs, earnings, GPUs, peer scores) are refreshed just
before each scrape by the functions in ``refreshers`` — the roles register
theirs, the API adds the store's and the GPUs'. Amounts are exported in gwei:
Prometheus samples are float64, exact to 2**53, which in wei is under 0.01 ETH
and in gwei is 9 million ETH. docs/grafana/pictor-node.json charts them all
(tests/node/test_metrics.py checks every panel names a metric defined here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

GWEI = 10**9
# Peer score bands for pictor_peers_by_score: the ban threshold is 100 (docs/PROTOCOL.md §9).
SCORE_BANDS = ((0.0, "0"), (25.0, "0-25"), (50.0, "25-50"), (100.0, "50-100"))


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.refreshers: list[Callable[[NodeMetrics], None]] = []
        self.peers = Gauge("pictor_peers", "Connected peers", registry=r)
        self.messages_in = Counter(
            "pictor_messages_in", "Accepted inbound messages", ["type"], registry=r
        )
        self.messages_out = Counter("pictor_messages_out", "Messages sent", ["type"], registry=r)
        # Direct streams only (not gossip): what a market costs per frame (bench/sim_fidelity.py)
        self.stream_messages = Counter(
            "pictor_stream_messages", "Market messages on direct streams", ["direction", "type"],
            registry=r,
        )  # fmt: skip
        self.stream_bytes = Counter(
            "pictor_stream_bytes", "Envelope bytes of those messages", ["direction"], registry=r
        )
        self.rejected = Counter(
            "pictor_messages_rejected", "Refused inbound messages", ["reason"], registry=r
        )
        self.tasks = Gauge("pictor_tasks", "Tasks in the store", ["state"], registry=r)
        self.banned = Counter("pictor_peers_banned", "Peers banned", registry=r)
        self.peers_by_score = Gauge(
            "pictor_peers_by_score", "Scored peers by penalty band (banned apart)", ["band"],
            registry=r,
        )  # fmt: skip
        self.jobs = Gauge("pictor_jobs", "This node's jobs as requester, by state", ["state"],
                          registry=r)  # fmt: skip
        self.frames_rendered = Gauge(
            "pictor_frames_rendered", "Frames this worker rendered since start", registry=r
        )
        self.frames_rendering = Gauge(
            "pictor_frames_rendering", "Frames this worker is rendering now", registry=r
        )
        self.checks_done = Gauge(
            "pictor_checks_done", "Results this checker judged since start", registry=r
        )
        self.paid_gwei = Gauge(
            "pictor_paid_gwei", "Paid to this node on chain (its redeemed vouchers)", registry=r
        )
        self.owed_gwei = Gauge(
            "pictor_owed_gwei", "Held in vouchers not yet redeemed", registry=r
        )
        gpu = ["gpu", "model"]
        self.gpu_utilization = Gauge(
            "pictor_gpu_utilization_percent", "GPU utilisation (NVML)", gpu, registry=r
        )
        self.gpu_temperature = Gauge(
            "pictor_gpu_temperature_celsius", "GPU temperature (NVML)", gpu, registry=r
        )
        self.gpu_memory_used = Gauge(
            "pictor_gpu_memory_used_mib", "GPU memory in use (NVML)", gpu, registry=r
        )
        self.gpu_power = Gauge("pictor_gpu_power_watts", "GPU power draw (NVML)", gpu, registry=r)

    def set_peer_scores(self, scores: Iterable[tuple[float, bool]]) -> None:
        """Count peers per band from (score, banned) pairs."""
        counts = {name: 0 for _, name in SCORE_BANDS} | {"banned": 0}
        for score, banned in scores:
            if banned:
                counts["banned"] += 1
                continue
            band = next((name for top, name in SCORE_BANDS if score <= top), "50-100")
            counts[band] += 1
        for band, n in counts.items():
            self.peers_by_score.labels(band).set(n)

    def render(self) -> bytes:
        for refresh in self.refreshers:
            refresh(self)
        return generate_latest(self.registry)


def gwei(amount_wei: int) -> float:
    """Wei as float gwei for a gauge (display only: money stays integer wei elsewhere)."""
    return amount_wei // GWEI + (amount_wei % GWEI) / GWEI
