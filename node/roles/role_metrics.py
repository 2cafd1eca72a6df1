"""The roles' gauges for ``/metrics``: refreshed from their state before each scrape."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from node.api.metrics import NodeMetrics, gwei

if TYPE_CHECKING:
    from node.roles.service import Roles

JOB_STATES = ("running", "completed", "expired", "cancelled")


def refresh_role_metrics(roles: Roles, metrics: NodeMetrics) -> None:
    states = Counter(job.view.outcome or "running" for job in roles.requester.jobs.values())
    for state in sorted(set(JOB_STATES) | set(states)):
        metrics.jobs.labels(state).set(states.get(state, 0))
    if roles.worker is not None:
        metrics.frames_rendered.set(roles.worker.rendered)
        metrics.frames_rendering.set(roles.worker.rendering)
    if roles.checker is not None:
        metrics.checks_done.set(roles.checker.checked)
    if roles.payee is not None:
        metrics.paid_gwei.set(gwei(roles.payee.paid_wei))
        metrics.owed_gwei.set(gwei(roles.payee.owed_wei()))
