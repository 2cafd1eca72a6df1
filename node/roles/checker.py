"""The checker role: answer a ``VerifyRequest`` with a signed ``Verdict``.

Theory of operation. The job's pinned settings come from its ``JobAnnounce``
(gossip; every node hears it), the scene from the requester and the frame
from the worker, both by CID through the content store (verified chunk by
chunk). The scene is preflighted first (:mod:`node.roles.scene_gate`, as a
worker does): a refused scene gets no verdict and no re-render.
``node.verify.verify_result`` re-renders ``request.tiles`` cells (k from the
requester's check plan, protocol.verification) chosen from a secret
drawn after the result existed and builds the verdict, which goes back to
the requester. The worker's device class is not on the wire, so the
comparison uses the cross-hardware tolerance (``worker`` identity unknown).
Checks run one at a time: each is a Blender process.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from trio_typing import TaskStatus

from node.log import log_event
from node.render.base import RendererIdentity
from node.roles.chain import Payee
from node.roles.context import RoleContext
from node.roles.scene_gate import SceneGate
from node.verify.checker import verify_result
from protocol.messages import JobAnnounce, JobSpec, VerifyRequest, Voucher

logger = logging.getLogger(__name__)
QUEUE_LEN = 64


class CheckerRole:
    def __init__(self, ctx: RoleContext, payee: Payee | None) -> None:
        self.ctx = ctx
        self.payee = payee
        self.specs: dict[bytes, JobSpec] = {}
        self.checked = 0
        self.scene_gate = SceneGate(ctx.render.inspect)
        self._send, self._recv = trio.open_memory_channel[tuple[bytes, VerifyRequest]](QUEUE_LEN)
        self._vouchers_in, self._vouchers_out = trio.open_memory_channel[tuple[Voucher, bytes]](256)

    def on_announce(self, announce: JobAnnounce) -> None:
        self.specs[announce.job_id] = announce.spec

    def receive(self, sender: bytes, request: VerifyRequest) -> bool:
        """Queue a check; False when we cannot take it (unknown job or full queue)."""
        spec = self.specs.get(request.job_id)
        if spec is None or spec.requester != sender:
            return False
        try:
            self._send.send_nowait((sender, request))
        except trio.WouldBlock:
            return False
        return True

    def on_voucher(self, sender: bytes, voucher: Voucher) -> None:
        spec = self.specs.get(voucher.job_id)
        if self.payee is not None and spec is not None and spec.requester == sender:
            # Paid through the payee's own task: a store write must not hold the stream.
            try:
                self._vouchers_in.send_nowait((voucher, spec.requester_address))
            except trio.WouldBlock:
                pass  # the requester re-sends a cumulative voucher with the next fee

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._vouchers)
            task_status.started()
            async for requester, request in self._recv:
                try:
                    await self._check(requester, request)
                except Exception as exc:  # no verdict; the requester times out
                    log_event(logger, logging.WARNING, "check failed", frame=request.frame,
                              error=str(exc)[:300])  # fmt: skip

    async def _vouchers(self) -> None:
        async for voucher, address in self._vouchers_out:
            if self.payee is not None:
                await self.payee.receive(voucher, address, "requester")

    async def _check(self, requester: bytes, request: VerifyRequest) -> None:
        spec = self.specs[request.job_id]
        scene = await self.ctx.fetch_from(requester, request.scene_cid)
        refusal = await self.scene_gate.refusal(scene, request.scene_cid, spec.settings,
                                                spec.ru_per_frame)  # fmt: skip
        if refusal is not None:  # logged by the gate; no verdict: the requester times out
            return
        frame = await self.ctx.fetch_from(request.worker, request.frame_cid)
        verdict = await verify_result(
            self.ctx.render.tiles, request, scene=scene, frame_image=frame, settings=spec.settings,
            job_build=spec.renderer_build,
            worker=RendererIdentity(spec.renderer_build, "unknown"),
        )  # fmt: skip
        self.checked += 1
        log_event(logger, logging.INFO, "verdict", frame=request.frame, passed=verdict.passed)
        self.ctx.outbox.send(requester, verdict)
