"""Real signed envelopes for explorer tests: adverts, jobs, results, verdicts, vouchers."""

from __future__ import annotations

import itertools
import time

from protocol import NodeKey, PaymentBinding, decode_envelope, encode_envelope
from protocol.envelope import Envelope
from protocol.messages import (
    Assurance,
    CapacityAdvert,
    Escrow,
    GpuInfo,
    JobAnnounce,
    JobSpec,
    Message,
    RenderSettings,
    Result,
    Role,
    Verdict,
    Voucher,
    WorkRecord,
    job_id_of,
)

_nonces = itertools.count(1)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def sign(key: NodeKey, message: Message, now_ms: int | None = None) -> bytes:
    return encode_envelope(key, message, nonce=next(_nonces), now_ms=now_ms or wall_ms())


def envelope(key: NodeKey, message: Message, now_ms: int | None = None) -> Envelope:
    return decode_envelope(sign(key, message, now_ms))


def payment_key(key: NodeKey) -> bytes:
    # A deterministic secp256k1 key per node (any 32 bytes below the curve order work).
    return bytes([1]) + key.node_id.raw[1:]


def advert(
    key: NodeKey,
    *,
    gpus: tuple[str, ...] = ("NVIDIA H100",),
    score_ru_per_hour: int = 1000,
    price_wei_per_ru: int = 10**12,
    roles: tuple[Role, ...] = (Role.WORKER,),
    eth_key: bytes | None = None,
) -> CapacityAdvert:
    return CapacityAdvert(
        roles=roles,
        gpus=tuple(GpuInfo(model, 81920) for model in gpus),
        renderer_builds=("blender-3.4.1",),
        score_ru_per_hour=score_ru_per_hour,
        price_wei_per_ru=price_wei_per_ru,
        stake_wei=0,
        payment=PaymentBinding.create(key, eth_key or payment_key(key)),
        addrs=(),
        free_slots=1,
    )


def job(
    key: NodeKey,
    frames: int = 4,
    *,
    requester_address: bytes = b"\x01" * 20,
    deadline_ms: int | None = None,
    escrow: Escrow | None = None,
) -> JobAnnounce:
    spec = JobSpec(
        requester=key.node_id.raw,
        requester_address=requester_address,
        scene_cid="bafkreia" + "a" * 52,
        scene_size_bytes=1024,
        renderer_build="blender-3.4.1",
        settings=RenderSettings("cycles", 320, 240, 32, 7, "png"),
        frames=tuple(range(1, frames + 1)),
        ru_per_frame=10,
        max_price_wei_per_frame=10**15,
        budget_wei=10**18,
        deadline_ms=deadline_ms or wall_ms() + 3_600_000,
        assurance=Assurance.NORMAL,
        checker_fee_bps=500,
        escrow=escrow,
        created_ms=wall_ms(),
    )
    return JobAnnounce(job_id=job_id_of(spec), spec=spec)


def result(job_id: bytes, frame: int, task: int = 1) -> Result:
    return Result(
        job_id=job_id,
        task_id=bytes([task]) * 32,
        frame=frame,
        frame_cid="bafkreib" + "b" * 52,
        frame_size_bytes=2048,
        render_time_ms=3100,
        renderer_build="blender-3.4.1",
        device_class="cpu-avx2",
    )


def verdict(job_id: bytes, frame: int, worker: NodeKey, passed: bool = True) -> Verdict:
    return Verdict(
        job_id=job_id,
        task_id=b"\x01" * 32,
        frame=frame,
        worker=worker.node_id.raw,
        result_digest=b"\x02" * 32,
        passed=passed,
        secret=b"\x03" * 32,
        tiles=(),
        checker_build="blender-3.4.1",
        checker_device_class="cpu-avx2",
        tile_digests=(),
    )


def voucher(job_id: bytes, payee: bytes, cumulative_wei: int) -> Voucher:
    return Voucher(
        chain_id=1,
        contract=b"\x09" * 20,
        requester=b"\x08" * 20,
        job_id=job_id,
        payee=payee,
        cumulative_wei=cumulative_wei,
        signature=b"\x00" * 65,
    )


def work_record(
    worker: NodeKey, checker: NodeKey, job_id: bytes, frame: int, passed: bool = True,
    task: int | None = None,
) -> WorkRecord:  # fmt: skip
    """The requester's record of one checked task: the worker's signed result, the
    checker's signed verdict on exactly it (sign the record as the requester)."""
    r = result(job_id, frame, task if task is not None else frame)
    result_wire = sign(worker, r)
    v = Verdict(
        job_id=job_id, task_id=r.task_id, frame=frame, worker=worker.node_id.raw,
        result_digest=decode_envelope(result_wire).digest, passed=passed, secret=b"\x03" * 32,
        tiles=(), checker_build="blender-3.4.1", checker_device_class="cpu-avx2",
        tile_digests=(),
    )  # fmt: skip
    return WorkRecord(job_id, passed, result_wire, sign(checker, v))
