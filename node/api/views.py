"""JSON views of a running ``Node`` for the API (implements ``NodeView``)."""

from __future__ import annotations

from typing import Any

import trio

from node.render.gpu import probe_gpus
from node.runtime import Node
from protocol.identity import address_text
from protocol.reputation import score

VERSION = "0.1.0"


class NodeApiView:
    def __init__(self, node: Node) -> None:
        self.node = node

    async def status(self) -> dict[str, Any]:
        node = self.node
        return {
            "node_id": node.node_id,
            "version": VERSION,
            "roles": [r.value for r in node.config.roles],
            "listen_addrs": node.network.listen_addrs(),
            "connected_peers": len(node.network.connected_peers()),
            "known_capacity_adverts": len(node.capacity),
            "banned_peers": len(node.banned),
            "uptime_s": round(trio.current_time() - node.started_s, 1),
            "data_dir": str(node.config.data_dir),
        }

    async def peers(self) -> list[dict[str, Any]]:
        node = self.node
        now_s = trio.current_time()
        connected = set(node.network.connected_peers())
        scores = {v.peer: v for v in node.scorer.view(now_s)}
        rows = {str(p["peer_id"]): p for p in await node.store.list_peers()}
        out = []
        for peer in sorted(connected | set(rows) | set(scores)):
            row = rows.get(peer, {})
            score = scores.get(peer)
            out.append(
                {
                    "peer_id": peer,
                    "connected": peer in connected,
                    "addrs": row.get("addrs", []),
                    "last_seen_ms": row.get("last_seen_ms"),
                    "dial_failures": row.get("dial_failures", 0),
                    "score": score.score if score else 0.0,
                    "banned": peer in node.banned or bool(score and score.banned),
                    "rejected": score.rejected if score else {},
                }
            )
        return out

    def network_capacity(self) -> list[dict[str, Any]]:
        out = []
        for peer, seen in sorted(self.node.capacity.items()):
            advert = seen.advert
            # from the public work record (node.record), the same for every node that holds it
            history = self.node.record.history(advert.payment.node)
            out.append(
                {
                    "peer_id": peer,
                    "roles": [r.value for r in advert.roles],
                    "gpus": [{"model": g.model, "vram_mib": g.vram_mib} for g in advert.gpus],
                    "renderer_builds": list(advert.renderer_builds),
                    "score_ru_per_hour": advert.score_ru_per_hour,
                    "price_wei_per_ru": str(advert.price_wei_per_ru),
                    "stake_wei": str(advert.stake_wei),
                    "payment_address": address_text(advert.payment.address),
                    "free_slots": advert.free_slots,
                    "addrs": list(advert.addrs),
                    "advert_timestamp_ms": seen.timestamp_ms,
                    "received_ms": seen.received_ms,
                    "record": {"accepted": history.accepted, "rejected": history.rejected},
                    "reputation": round(score(history), 4),
                }
            )
        return out

    async def wait_capacity(self, min_peers: int, wait_s: float) -> None:
        """Return once adverts from ``min_peers`` peers are known, or after ``wait_s``."""
        with trio.move_on_after(wait_s):
            await self.node.wait_until(lambda: len(self.node.capacity) >= min_peers)

    async def rows(self, table: str) -> list[dict[str, Any]]:
        return await self.node.store.list_rows(table)

    async def metrics_text(self) -> bytes:
        node, metrics = self.node, self.node.metrics
        metrics.peers.set(len(node.network.connected_peers()))
        metrics.tasks.clear()
        for state, count in (await node.store.task_counts()).items():
            metrics.tasks.labels(state).set(count)
        metrics.set_peer_scores((v.score, v.banned) for v in node.scorer.view(trio.current_time()))
        probe = await trio.to_thread.run_sync(probe_gpus)  # NVML: a few ms; none here is fine
        for gauge in (metrics.gpu_utilization, metrics.gpu_temperature, metrics.gpu_memory_used,
                      metrics.gpu_power):  # fmt: skip
            gauge.clear()
        for gpu in probe.gpus:
            labels = (str(gpu.index), gpu.model)
            for gauge, value in ((metrics.gpu_utilization, gpu.utilization_pct),
                                 (metrics.gpu_temperature, gpu.temperature_c),
                                 (metrics.gpu_memory_used, gpu.vram_used_mib),
                                 (metrics.gpu_power, gpu.power_w)):  # fmt: skip
                if value is not None:
                    gauge.labels(*labels).set(value)
        return metrics.render()
