"""MarketHarness: one requester, several workers and fake checkers on a fake link.

After h11's ``ConnectionPair``: the harness carries out every command the
machines return. Messages travel as real signed envelopes
(``encode_envelope`` → bytes → ``decode_envelope``), so the wire schema of
every market message is exercised. Rendering and checking are left to the
test: ``renders`` holds the tasks workers are rendering, ``verifications``
the results waiting for a verdict, and the test finishes, fails or judges
them. ``silence(worker)`` cuts a worker off (its messages and timers stop);
``drop_next`` loses messages and ``duplicate`` delivers each one twice.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

from eth_account import Account

from protocol.cid import cid_of_sha256
from protocol.envelope import decode_envelope, encode_envelope
from protocol.errors import RemoteProtocolError
from protocol.identity import NodeKey
from protocol.market import (
    CancelRender,
    Command,
    JobMachine,
    MarketConfig,
    Publish,
    RecordPayment,
    RequestPlant,
    RequestVerification,
    Send,
    StartRender,
    TaskState,
    WorkerConfig,
    WorkerMachine,
)
from protocol.messages import (
    Assurance,
    Award,
    Dispute,
    Escrow,
    FailureReason,
    JobSpec,
    LeaseRevoked,
    Message,
    RenderSettings,
    Result,
    TileEvidence,
    Verdict,
    VerifyRequest,
    Voucher,
    job_id_of,
)
from protocol.verification import DEFAULT_POLICY, Level, VerificationPolicy, select_tiles

BUILD = "blender-3.4.1"
RU_PER_FRAME = 10
START_MS = 1_700_000_000_000


def eth_address(key: bytes) -> bytes:
    return bytes.fromhex(Account.from_key(key).address[2:])


def key_for(name: str) -> NodeKey:
    return NodeKey(hashlib.sha256(name.encode()).digest())


PLANT_CID = "bafkreiplant"  # the harness's plant CIDs start so


def tiles_for(request: VerifyRequest) -> tuple[TileEvidence, ...]:
    """Evidence on the cells the request's tile secret selects (the requester refuses any
    other), as many as it asked for (the 320x240 frame has 300 cells)."""
    tiles = select_tiles(request.result_digest, request.tile_secret, 320, 240, request.tiles,
                         DEFAULT_POLICY.sampling.tile_px)  # fmt: skip
    return tuple(TileEvidence(t.x, t.y, t.width, t.height, 90_000, 0) for t in tiles)


def digests_for(request: VerifyRequest) -> tuple[bytes, ...]:
    """The checker's commitment: one (placeholder) re-rendered tile digest per tile."""
    return tuple(hashlib.sha256(b"tile %d" % i).digest() for i in range(request.tiles))


def copy_of(frame_cid: str) -> str:
    """The CID a ``serve_copies`` harness serves checkers ``frame_cid`` under."""
    return cid_of_sha256(hashlib.sha256(b"copy of " + frame_cid.encode()).digest())


def address_for(name: str) -> bytes:
    return hashlib.sha256(b"address:" + name.encode()).digest()[:20]


def eth_key_for(name: str) -> bytes:
    """A secp256k1 payment key (for harnesses whose workers sign their results)."""
    return hashlib.sha256(b"eth-key:" + name.encode()).digest()


def make_spec(
    requester: bytes,
    frames: tuple[int, ...],
    *,
    max_price_wei_per_frame: int,
    budget_wei: int,
    deadline_ms: int,
    assurance: Assurance = Assurance.NORMAL,
    checker_fee_bps: int = 500,
    escrow: Escrow | None = None,
) -> JobSpec:
    return JobSpec(
        requester=requester,
        requester_address=address_for("requester"),
        scene_cid="bafkreiscene",
        scene_size_bytes=1_000_000,
        renderer_build=BUILD,
        settings=RenderSettings("cycles", 320, 240, 32, 7, "png"),
        frames=frames,
        ru_per_frame=RU_PER_FRAME,
        max_price_wei_per_frame=max_price_wei_per_frame,
        budget_wei=budget_wei,
        deadline_ms=deadline_ms,
        assurance=assurance,
        checker_fee_bps=checker_fee_bps,
        escrow=escrow,
        created_ms=START_MS,
    )


def one_checker_policy() -> VerificationPolicy:
    """The default policy with ``normal`` at one checker of 24 tiles for every worker (the
    level before stop 37): the harness's default, for tests of the machine's behaviour
    that does not depend on how many checkers a level asks (payments, disputes, plants).
    Tests of the levels themselves pass ``verification=DEFAULT_POLICY``."""
    levels = {**DEFAULT_POLICY.sampling.levels, Assurance.NORMAL: Level(24, 8, 1.0, 0.25)}
    return replace(DEFAULT_POLICY, sampling=replace(DEFAULT_POLICY.sampling, levels=levels))


ONE_CHECKER_POLICY = one_checker_policy()


@dataclass
class Sent:
    """One requester-side fact the invariants look at, stamped with its time."""

    now_ms: int
    command: Command


@dataclass
class MarketHarness:
    frames: tuple[int, ...] = (1, 2, 3)
    worker_prices_wei_per_ru: tuple[int, ...] = (100, 110, 120)
    worker_slots: int = 1
    checkers: int = 2
    market: MarketConfig = field(default_factory=MarketConfig)
    assurance: Assurance = Assurance.NORMAL
    max_price_wei_per_frame: int = 2_000
    budget_wei: int = 1_000_000
    deadline_after_ms: int = 3_600_000
    strict: bool = True  # re-raise a peer's protocol error instead of recording it
    worker_disputes: bool = False  # workers' machines contest rejections themselves
    # An escrowed job whose workers sign results with real payment keys (eth_key_for),
    # checked by ``result_signer`` (see ledger.fraud); finish_render signs unless told.
    escrow: Escrow | None = None
    result_signer: Callable[[JobSpec, Result], bytes | None] | None = None
    # Pass signatures (protocol.signed_pass), for an escrowed job: ``pass_signer`` checks
    # them in the machine (ledger.fraud.pass_signer), ``pass_sign`` makes the checkers
    # sign their passes with real payment keys (ledger.fraud.sign_pass; plants then get
    # real CIDs, which a Pass can name).
    pass_signer: Callable[[JobSpec, Verdict, str, bytes], bytes | None] | None = None
    pass_sign: Callable[[JobSpec, Verdict, str, bytes], bytes | None] | None = None
    # Serve checkers a copy of each frame under its own CID (as the node serves its
    # re-encoding): assign_checker is told it, requests and passes name it.
    serve_copies: bool = False
    check_secret: bytes | None = None  # the requester's (plants need one)
    verification: VerificationPolicy = ONE_CHECKER_POLICY  # DEFAULT_POLICY: the real levels
    # Checks wait for a checker with room (verification.with_room), as the drivers hold
    # them when every checker is busy: RequestVerification is kept in ``held`` and the
    # machine told (check_waits); the test assigns it (assign_held).
    hold_checks: bool = False

    def __post_init__(self) -> None:
        self.now_ms = START_MS
        self.requester_key = key_for("requester")
        self.requester = self.requester_key.node_id.raw
        self.spec = make_spec(
            self.requester, self.frames, max_price_wei_per_frame=self.max_price_wei_per_frame,
            budget_wei=self.budget_wei, deadline_ms=START_MS + self.deadline_after_ms,
            assurance=self.assurance, escrow=self.escrow,
        )  # fmt: skip
        self.job_id = job_id_of(self.spec)
        signer = self.result_signer
        self.job = JobMachine(
            self.job_id, self.spec, self.market, self.now_ms,
            result_signer=None if signer is None else partial(signer, self.spec),
            check_secret=self.check_secret, verification=self.verification,
            pass_signer=None if self.pass_signer is None else partial(self.pass_signer, self.spec),
        )  # fmt: skip
        self.payment_keys: dict[bytes, bytes] = {}  # worker node -> its payment key
        self.keys: dict[bytes, NodeKey] = {self.requester: self.requester_key}
        self.workers: dict[bytes, WorkerMachine] = {}
        self.payee_owner: dict[bytes, bytes] = {}
        for i, price in enumerate(self.worker_prices_wei_per_ru):
            key = key_for(f"worker{i}")
            node = key.node_id.raw
            config = WorkerConfig(price, (BUILD,), slots=self.worker_slots,
                                  dispute_rejections=self.worker_disputes)  # fmt: skip
            self.keys[node] = key
            address = address_for(f"worker{i}")
            if self.escrow is not None:
                self.payment_keys[node] = eth_key_for(f"worker{i}")
                address = eth_address(self.payment_keys[node])
            self.payee_owner[address] = node
            self.workers[node] = WorkerMachine(node, address, config, self.now_ms)
        self.checker_ids: list[bytes] = []
        self.checker_addresses: dict[bytes, bytes] = {}
        self.checker_keys: dict[bytes, bytes] = {}  # checker node -> its payment key
        for i in range(self.checkers):
            key = key_for(f"checker{i}")
            self.keys[key.node_id.raw] = key
            self.checker_ids.append(key.node_id.raw)
            self.checker_keys[key.node_id.raw] = eth_key_for(f"checker{i}")
            self.checker_addresses[key.node_id.raw] = (
                address_for(f"checker{i}") if self.pass_sign is None
                else eth_address(self.checker_keys[key.node_id.raw])
            )  # fmt: skip
        self.plant_cids: set[str] = set()
        self.wire: deque[tuple[bytes, bytes, bytes]] = deque()
        self.renders: dict[bytes, bytes] = {}  # task id -> worker rendering it
        self.verifications: dict[bytes, tuple[bytes, VerifyRequest]] = {}
        self.dispute_requests: list[tuple[bytes, VerifyRequest]] = []  # a disputed task's
        self.plants: dict[bytes, tuple[bytes, VerifyRequest]] = {}  # task id -> plant's check
        self.silent: set[bytes] = set()
        self.drop_next = 0  # lose this many of the next messages sent
        self.duplicate = False  # deliver every message twice
        self.log: list[Sent] = []  # every command the requester returned
        self.rejected: list[tuple[bytes, RemoteProtocolError]] = []
        self.verdicts: list[tuple[bytes, Verdict]] = []  # every verdict the checkers sent
        self.held: dict[bytes, RequestVerification] = {}  # task id -> its waiting request
        self._nonce = 0
        self._next_checker = 0

    # ---- driving ----

    def start(self) -> None:
        self._requester_commands(self.job.start(self.now_ms))
        self.pump()

    def pump(self) -> None:
        while self.wire:
            self._deliver(*self.wire.popleft())

    def advance(self, delta_ms: int) -> None:
        """Let ``delta_ms`` pass, firing every timer due on the way in order."""
        target = self.now_ms + delta_ms
        for _ in range(100_000):
            due = [t for t in self._timers() if t <= target]
            if not due:
                break
            self.now_ms = max(self.now_ms, min(due))
            if (t := self.job.get_timer()) is not None and t <= self.now_ms:
                self._requester_commands(self.job.handle_timer(self.now_ms))
            for node, worker in self.workers.items():
                t = worker.get_timer()
                if node not in self.silent and t is not None and t <= self.now_ms:
                    self._worker_commands(node, worker.handle_timer(self.now_ms))
            self.pump()
        else:
            raise AssertionError("timers never settle")
        self.now_ms = target

    def finish_render(
        self, task_id: bytes, build: str = BUILD, cid: str = "bafkreiframe",
        result_sig: bytes | None = None,
    ) -> None:  # fmt: skip
        node = self.renders.pop(task_id)
        commands = self.workers[node].render_finished(
            task_id, cid, 1234, 3000, build, "cpu-avx2", self.now_ms, result_sig=result_sig
        )
        self._worker_commands(node, commands)
        self.pump()

    def fail_render(self, task_id: bytes) -> None:
        node = self.renders.pop(task_id)
        commands = self.workers[node].render_failed(
            task_id, FailureReason.RENDER_ERROR, "boom", self.now_ms
        )
        self._worker_commands(node, commands)
        self.pump()

    def verdict(self, task_id: bytes, passed: bool) -> None:
        checker, request = self.verifications.pop(task_id)
        verdict = self.make_verdict(checker, request, passed)
        self.verdicts.append((checker, verdict))
        self.send(checker, self.requester, verdict)
        self.pump()

    def assign_held(self, task_id: bytes, checker: bytes) -> None:
        """A checker has room now: the held request of ``task_id`` goes to ``checker``."""
        del self.held[task_id]
        address = self.checker_addresses[checker]
        self._requester_commands(self.job.assign_checker(task_id, checker, self.now_ms, address))
        self.pump()

    def plant_verdict(self, task_id: bytes, passed: bool) -> None:
        """The checker of ``task_id``'s plant answers (``passed``: a lazy checker)."""
        checker, request = self.plants.pop(task_id)
        verdict = self.make_verdict(checker, request, passed)
        self.verdicts.append((checker, verdict))
        self.send(checker, self.requester, verdict)
        self.pump()

    def dispute_verdict(self, index: int, passed: bool) -> None:
        """Answer ``dispute_requests[index]`` (it stays listed)."""
        checker, request = self.dispute_requests[index]
        verdict = self.make_verdict(checker, request, passed)
        self.verdicts.append((checker, verdict))
        self.send(checker, self.requester, verdict)
        self.pump()

    def make_verdict(self, checker: bytes, request: VerifyRequest, passed: bool) -> Verdict:
        """``checker``'s verdict on the cells ``request`` draws, signed when it passes and
        the harness signs passes (``pass_sign``)."""
        verdict = Verdict(
            request.job_id, request.task_id, request.frame, request.worker,
            request.result_digest, passed, request.tile_secret, tiles_for(request), BUILD,
            "cpu-avx2", digests_for(request),
        )  # fmt: skip
        if self.pass_sign is None:
            return verdict
        key = self.checker_keys[checker]
        return replace(verdict, pass_sig=self.pass_sign(self.spec, verdict, request.frame_cid, key))

    def rejection_digest(self, task_id: bytes) -> bytes | None:
        """The verdict digest the requester named when it told the worker of a rejection."""
        for sent in self.log:
            message = sent.command.message if isinstance(sent.command, Send) else None
            if isinstance(message, LeaseRevoked) and message.task_id == task_id:
                if message.verdict_digest is not None:
                    return message.verdict_digest
        return None

    def dispute(self, task_id: bytes, source: bytes | None = None) -> None:
        """The task's worker (or ``source``) disputes the verdict that rejected it."""
        worker = self.job._tasks[task_id].worker
        digest = self.rejection_digest(task_id) or bytes(32)
        self.send(source or worker, self.requester, Dispute(self.job_id, task_id, digest, "honest"))
        self.pump()

    def send(self, source: bytes, to: bytes, message: Message) -> None:
        """Put a signed envelope from ``source`` on the wire (tests forge input with it)."""
        if source in self.silent or to in self.silent:
            return
        if self.drop_next > 0:
            self.drop_next -= 1
            return
        self._nonce += 1
        data = encode_envelope(self.keys[source], message, nonce=self._nonce, now_ms=self.now_ms)
        self.wire.append((source, to, data))
        if self.duplicate:
            self.wire.append((source, to, data))  # the same envelope, delivered twice

    def silence(self, node: bytes) -> None:
        self.silent.add(node)
        for task_id in [t for t, n in self.renders.items() if n == node]:
            del self.renders[task_id]

    # ---- views for assertions ----

    def commands(self, kind: type) -> list[Command]:
        return [s.command for s in self.log if isinstance(s.command, kind)]

    def awards(self) -> list[tuple[int, Award]]:
        return [
            (s.now_ms, s.command.message)
            for s in self.log
            if isinstance(s.command, Send) and isinstance(s.command.message, Award)
        ]

    # ---- internals ----

    def _timers(self) -> list[int]:
        times = [self.job.get_timer()]
        times += [w.get_timer() for n, w in self.workers.items() if n not in self.silent]
        return [t for t in times if t is not None]

    def _deliver(self, source: bytes, to: bytes, data: bytes) -> None:
        envelope = decode_envelope(data)
        assert envelope.sender.raw == source
        try:
            if to == self.requester:
                commands = self.job.receive(
                    source, envelope.message, self.now_ms, envelope_digest=envelope.digest
                )
                self._requester_commands(commands)
            elif to in self.workers:
                self._worker_commands(
                    to, self.workers[to].receive(source, envelope.message, self.now_ms)
                )
            else:
                request = envelope.message
                assert isinstance(request, VerifyRequest)
                if request.frame_cid.startswith(PLANT_CID) or request.frame_cid in self.plant_cids:
                    self.plants[request.task_id] = (to, request)
                elif self.job.task_state(request.task_id) is TaskState.DISPUTED:
                    self.dispute_requests.append((to, request))
                else:
                    self.verifications[request.task_id] = (to, request)
        except RemoteProtocolError as exc:
            if self.strict:
                raise
            self.rejected.append((source, exc))

    def _requester_commands(self, commands: list[Command]) -> None:
        for command in commands:
            self.log.append(Sent(self.now_ms, command))
            if isinstance(command, Send):
                self.send(self.requester, command.to, command.message)
            elif isinstance(command, Publish):
                for node in self.workers:
                    self.send(self.requester, node, command.message)
            elif isinstance(command, RequestVerification) and self.hold_checks:
                self.held[command.task_id] = command
                self.job.check_waits(command.task_id)
            elif isinstance(command, RequestVerification):
                exclude = command.exclude | self.job.checkers_refused(command.task_id)
                checker = self._pick_checker(command.worker, exclude)
                if checker is None:  # a dispute with no fresh checker (the drivers wait first)
                    fallback = self.job.dispute_fallback(command.task_id)
                    checker = self._pick_checker(command.worker, exclude - fallback)
                if checker is None and self.job.wants_further_check(command.task_id):  # nobody else to ask, as the drivers do
                    self._requester_commands(
                        self.job.checkers_exhausted(command.task_id, self.now_ms,
                                                    self.checker_ids)
                    )
                if checker is not None:  # else the machine's verify timeout decides
                    address = self.checker_addresses[checker]
                    served = copy_of(command.frame_cid) if self.serve_copies else None
                    self._requester_commands(self.job.assign_checker(
                        command.task_id, checker, self.now_ms, address, served))  # fmt: skip
            elif isinstance(command, RequestPlant):
                exclude = command.exclude | self.job.checkers_excluded(command.task_id)
                checker = self._pick_checker(command.worker, exclude)
                if checker is not None:
                    address = self.checker_addresses[checker]
                    cid = PLANT_CID + command.key.hex()[:16]
                    if self.pass_sign is not None:  # a CID a Pass can name
                        cid = cid_of_sha256(hashlib.sha256(cid.encode()).digest())
                        self.plant_cids.add(cid)
                    self._requester_commands(
                        self.job.assign_plant(command.task_id, checker, cid, self.now_ms, address)
                    )
            elif isinstance(command, RecordPayment) and command.node in self.workers:
                # (checkers here are played by the test: their vouchers stay in the log)
                voucher = Voucher(1, bytes(20), bytes(20), command.job_id, command.payee_address,
                                  command.cumulative_wei, bytes(65))  # fmt: skip
                self.send(self.requester, command.node, voucher)

    def _worker_commands(self, node: bytes, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, Send):
                self.send(node, command.to, command.message)
            elif isinstance(command, StartRender):
                self.renders[command.task_id] = node
            elif isinstance(command, CancelRender):
                self.renders.pop(command.task_id, None)

    def _pick_checker(self, worker: bytes, exclude: frozenset[bytes]) -> bytes | None:
        candidates = [c for c in self.checker_ids if c != worker and c not in exclude]
        if not candidates:
            return None
        self._next_checker += 1
        return candidates[self._next_checker % len(candidates)]
