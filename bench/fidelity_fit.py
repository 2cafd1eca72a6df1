"""bench/sim_fidelity.py's fit: the simulator's models measured on this machine.

Each phase is timed with the node's own parts (its sandboxed render kit, one warm
Blender per job; its content transfer over libp2p), as the devnet's nodes meet it:
see :func:`fit` and docs/SIMULATIONS.md (Calibration against a real run).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import trio
from eth_account import Account
from eth_utils import to_canonical_address

from ledger.fraud import checker_pass, sign_pass
from node.config import NodeConfig
from node.content.net import PeerChunkSource, content_limits, serve_content
from node.content.source import StoreChunkSource
from node.content.store import ContentStore
from node.content.transfer import TransferConfig, fetch
from node.keyfile import NodeKey
from node.net.libp2p_net import Libp2pSettings, open_libp2p_network
from node.render.base import RendererIdentity
from node.render.blender import BlenderConfig
from node.render.warm import WarmConfig
from node.roles import persist
from node.roles.ports import RenderKit, blender_kit
from node.store.db import open_store
from node.verify.checker import TileRenderer, check_frame, verify_result
from node.verify.images import load_image
from node.verify.plant import canonical_png
from protocol.challenge import scaled_settings
from protocol.cid import cid_of_sha256
from protocol.envelope import encode_envelope
from protocol.messages import Assurance, Escrow, JobSpec, RenderSettings, VerifyRequest
from protocol.verification import DEFAULT_POLICY, plan_check

# What the steady checks sign for (a job of the fit's own; the node's code signs the same
# way for any): the checker's node and payment keys, an escrowed job's spec.
_FIT_KEY = NodeKey(hashlib.sha256(b"pictor fidelity fit: checker node key").digest())
_FIT_PAYMENT_KEY = hashlib.sha256(b"pictor fidelity fit: checker payment key").digest()
_FIT_PAYMENT_ADDRESS = to_canonical_address(Account.from_key(_FIT_PAYMENT_KEY).address)
_FIT_JOB = hashlib.sha256(b"pictor fidelity fit: job").digest()
_FIT_SPEC = JobSpec(_FIT_KEY.node_id.raw, bytes(20), "bafkscene", 1, "blender",
                    RenderSettings("CYCLES", 160, 120, 16, 0, "PNG_RGBA8"), (1,), 1, 10**17,
                    10**18, 2**40, Assurance.NORMAL, 1000,
                    Escrow(31337, bytes(range(20)), bytes(32)), 0)  # fmt: skip
STEADY_CHECKS = 8  # warm checks timed (after one that starts the warm process): 1.5-3 s,
# a window nearer the devnet's eleven checks (3-5 s) than 3 checks, which a load swing moved ±50 %

@dataclass(frozen=True)
class Fit:
    frame_alone_s: float  # one frame in a warm Blender process (the node's), alone
    frame_shared_s: float  # the same with `workers` renders at once on this machine
    check_s: float  # one tile check at the plan's k in the checker's warm process, whole
    k: int
    tile_fraction: float  # a tile's pixels over the frame's
    check_overhead_s: float  # fetch_s + check_s minus its tiles' share of a (shared) frame
    setup_s: float  # before a node's first frame of a job: inspection + warm process start
    # Capacity challenges (trial leases), measured as the devnet's nodes meet them: every
    # worker challenged at once when the job's bids arrive, the requester judging their
    # answers together on its one renderer.
    answer_s: float = 0.0  # a worker's answer: a fresh kit's inspection + quarter render
    judge_s: float = 0.0  # the requester's judgement: one tile re-rendered, cold kit
    first_check_s: float = 0.0  # the checker's first check meanwhile, its setup included
    preflight_s: float = 0.0  # the requester's preflight inspection before it deposits
    fetch_s: float = 0.0  # a checker's fetch of a frame from the requester (libp2p, loopback)
    # the requester's work on a result before its first check: the frame's fetch from the
    # worker, the copy checkers are served (canonical PNG, stored) and the journal entry
    prepare_s: float = 0.0

    def challenge_start_s(self, args: argparse.Namespace, ru_per_frame: int) -> float:
        """The answer's cost beyond what the simulator models of it: the job's setup
        and the challenge's render units (protocol.challenge.challenge_ru, at least 1)
        at the simulated GPU's speed."""
        quarter = scaled_settings(settings_of(args), bytes(32))
        part = quarter.resolution_x * quarter.resolution_y
        ru = max(1, -(-ru_per_frame * part // (args.width * args.height)))
        return max(0.0, self.answer_s - self.setup_s - ru / ru_per_frame * self.frame_shared_s)


def settings_of(args: argparse.Namespace) -> RenderSettings:
    return RenderSettings("CYCLES", args.width, args.height, args.samples, 0, "PNG_RGBA8")


async def fit(args: argparse.Namespace, scene: Path, work: Path) -> Fit:
    settings = settings_of(args)
    node = NodeConfig(Path("."))
    warm = WarmConfig(node.warm_renders, node.warm_idle_s)

    def kit_at(name: str) -> RenderKit:  # the node's own: sandboxed, one warm Blender per job
        (work / name).mkdir()
        return blender_kit(BlenderConfig(), work / name, warm)

    async def frames(kit: RenderKit, numbers: list[int], out: Path) -> list[float]:
        times = []
        for frame in numbers:
            start = time.perf_counter()
            await kit.frames.render_frames(scene, settings, [frame], out)
            times.append(time.perf_counter() - start)
        return times

    kit = kit_at("kit")
    start = time.perf_counter()
    await kit.inspect(scene)  # a worker's and a checker's preflight before a job's first frame
    inspect_s = time.perf_counter() - start
    alone = await frames(kit, [1, 2, 3], work / "alone")  # the first starts the warm process
    steady_s = sum(alone[1:]) / 2
    warm_start_s = max(0.0, alone[0] - steady_s)
    shared: list[float] = []

    async def worker(i: int) -> None:  # each devnet worker has its own warm process
        shared.extend((await frames(kit_at(f"w{i}"), [1, 2], work / f"shared{i}"))[1:])

    async with trio.open_nursery() as nursery:
        for i in range(args.workers):
            nursery.start_soon(worker, i)
    renderer = kit.tiles
    me = await renderer.identify()
    k = plan_check(Assurance.NORMAL, 0.0).k
    # The node's checker keeps one warm Blender per job (issue 15): its first check pays the
    # start-up, the next ones do not. A check's cost is a warm one; the checker's first
    # check of the job, start-up and inspection included, is timed as the devnet's checker
    # meets it (_challenges) and the simulator charges its excess once (checker_setup_s).
    # (A cold check charged to every check overestimated the makespan by 40 % in CI; the
    # start-up spread over the job's checks counted it twice once the first was timed.)
    # This first check starts the warm process.
    # Then a steady check as the node's checker makes one (node.roles.checker): the frame's
    # fetch from the requester, then the whole check (tiles, image load and comparison).
    # The check is the node's own call on the frame's file (image load included), then
    # what the checker does before it sends (the pass signed, the verdict's envelope).
    # Each re-renders tiles of another frame of the animation, as the devnet's checker
    # does (compared with frame 1's image: the verdict's outcome costs the same).
    frame_path = next((work / "alone").glob("*1.png"))
    checks = []
    for i in range(1 + STEADY_CHECKS):
        start = time.perf_counter()
        await _steady_check(renderer, me, scene, settings, frame_path, 1 + i, k)
        checks.append(time.perf_counter() - start)
    rendered = sorted(work.glob("*/*.png"))
    fetch_s = await _fetch_s(rendered, work / "fetched")
    prepare_s = fetch_s + await _prepare_s(rendered, work / "prepared")
    answer_s, judge_s, first_check_s = await _challenges(args, scene, settings, kit_at, k, work)
    tile_px = DEFAULT_POLICY.sampling.tile_px
    tile_fraction = min(1.0, tile_px * tile_px / (args.width * args.height))
    frame_shared_s = sum(shared) / len(shared)
    check_s = sum(checks[1:]) / STEADY_CHECKS
    overhead_s = max(0.0, fetch_s + check_s - k * tile_fraction * frame_shared_s)
    return Fit(steady_s, frame_shared_s, check_s, k, tile_fraction, overhead_s,
               inspect_s + warm_start_s, answer_s, judge_s, first_check_s, inspect_s,
               fetch_s, prepare_s)  # fmt: skip


async def _steady_check(renderer: TileRenderer, me: RendererIdentity, scene: Path,
                        settings: RenderSettings, frame_path: Path, frame: int,
                        k: int) -> None:  # fmt: skip
    """One check as node.roles.checker makes it, after the frame's fetch: ``verify_result``
    on the fetched file, the pass signed with the payment key (``sign_pass``) and the
    verdict's envelope (the outbox signs and encodes it)."""
    digest = hashlib.sha256(frame_path.read_bytes() + bytes([frame])).digest()
    frame_cid = cid_of_sha256(digest)  # a real CID: the pass signs over its digest
    request = VerifyRequest(_FIT_JOB, digest, frame, _FIT_KEY.node_id.raw, digest, frame_cid,
                            "bafkscene", 10**16, k, digest, me.device_class)  # fmt: skip
    verdict = await verify_result(renderer, request, scene=scene, frame_image=frame_path,
                                  settings=settings, job_build=me.build, worker=me)  # fmt: skip
    verdict = replace(verdict, passed=True)  # the pass a real frame gets, signed
    pass_sig = sign_pass(_FIT_SPEC, verdict, frame_cid, _FIT_PAYMENT_KEY)
    assert pass_sig is not None  # signed, as the node's checker signs every pass
    verdict = replace(verdict, pass_sig=pass_sig)
    checker_pass(_FIT_SPEC, verdict, frame_cid, _FIT_PAYMENT_ADDRESS)  # the claim watch's key
    encode_envelope(_FIT_KEY, verdict, nonce=frame, now_ms=int(time.time() * 1000))


async def _prepare_s(frames: list[Path], store_dir: Path) -> float:
    """The requester's work on a result besides its fetch, before the check is asked
    (node.roles.plants ``CheckFrames.prepare``, then the assignment's journal entry):
    the canonical PNG checkers are served, stored, and one journal write through the
    node's store; the mean over the rendered frames."""
    times = []
    async with open_store(store_dir / "node.sqlite3") as store:
        for i, path in enumerate(frames):
            # a store of its own each: the workers' copies of a frame have one canonical
            # CID, and a copy already stored is not written again (the node's are distinct)
            content = ContentStore(store_dir / f"content{i}", budget_bytes=1 << 30)
            start = time.perf_counter()
            content.put_bytes(canonical_png(path))
            await store.call(partial(persist.journal, job_id=_FIT_JOB.hex(), kind="assign",
                                     peer=_FIT_KEY.node_id.raw, data=bytes(52),
                                     now_ms=i))  # fmt: skip
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


async def _fetch_s(frames: list[Path], store_dir: Path) -> float:
    """A frame's fetch as a checker makes it from its requester (node.roles.context's
    ``fetch_from``): the node's content transfer between two libp2p hosts on this
    machine's loopback, connected beforehand (the devnet's are); the mean over the
    rendered frames, each a distinct CID. (Each host in its own process measured the
    same, 24 ms at load 4: the hosts share this process.)"""
    config = TransferConfig()
    limits = content_limits(config.max_chunk_bytes)
    settings = Libp2pSettings()
    serving = ContentStore(store_dir / "requester", budget_bytes=1 << 30)
    fetching = ContentStore(store_dir / "checker", budget_bytes=1 << 30)
    cids = list(dict.fromkeys(serving.put_bytes(path.read_bytes()) for path in frames))
    times = []
    async with (
        open_libp2p_network(NodeKey.generate(), settings) as requester,
        open_libp2p_network(NodeKey.generate(), settings) as checker,
    ):
        serve_content(requester, StoreChunkSource(serving), limits, lambda peer, error: None)
        await checker.connect(requester.listen_addrs()[0])
        source = PeerChunkSource(checker, requester.local_peer, limits)
        for cid in cids:
            start = time.perf_counter()
            await fetch(cid, [source], fetching, config)
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


async def _challenges(args: argparse.Namespace, scene: Path, settings: RenderSettings,
                      kit_at: Callable[[str], RenderKit], k: int,
                      work: Path) -> tuple[float, float, float]:  # fmt: skip
    """A worker's challenge answer, the requester's judgement and the checker's first
    check, each timed as the devnet's nodes meet them (means over the workers).

    The requester challenges every bidder when the bids arrive, so ``--workers``
    answers render at once, each in a fresh kit (a worker meets the job at its
    challenge: preflight inspection, then the quarter frame starts the job's warm
    Blender: node.roles.challenge_answer). The answers arrive together; the requester
    judges them on its one fresh kit (one tile each: node.roles.challenger) while the
    workers render the job's frames in their warm processes (``--frames`` spread over
    them) and the checker starts on the first result (a fresh kit: inspection, then a
    check of ``k`` tiles).
    """
    challenge = scaled_settings(settings, b"\x07" * 32)
    answers: list[float] = []
    kits: list[RenderKit] = []
    images: list[Path] = []

    async def answer(i: int) -> None:
        kit = kit_at(f"answer{i}")
        start = time.perf_counter()
        await kit.inspect(scene)
        out = await kit.frames.render_frames(scene, challenge, [1], work / f"answer{i}-out")
        answers.append(time.perf_counter() - start)
        kits.append(kit)
        images.append(out[0].path)

    async with trio.open_nursery() as nursery:
        for i in range(args.workers):
            nursery.start_soon(answer, i)
    requester = kit_at("requester")
    me = await requester.tiles.identify()
    judges: list[float] = []
    first_check: list[float] = []

    async def judge(path: Path) -> None:
        start = time.perf_counter()
        await check_frame(requester.tiles, scene, challenge, 1, load_image(path),
                          result_digest=hashlib.sha256(path.read_bytes()).digest(), k=1,
                          worker=me)  # fmt: skip
        judges.append(time.perf_counter() - start)

    async def frames(i: int) -> None:  # the job's frames, spread over the workers
        for n in range(-(-args.frames // args.workers)):
            await kits[i].frames.render_frames(scene, settings, [1], work / f"trial{i}-{n}")

    async def check() -> None:
        kit = kit_at("checker")
        start = time.perf_counter()
        await kit.inspect(scene)  # then a check as the steady ones (checker_setup_s: the excess)
        await _steady_check(kit.tiles, me, scene, settings,
                            next((work / "alone").glob("*1.png")), 1, k)  # fmt: skip
        first_check.append(time.perf_counter() - start)

    async with trio.open_nursery() as nursery:
        for i, path in enumerate(images):
            nursery.start_soon(frames, i)
            nursery.start_soon(judge, path)
        nursery.start_soon(check)
    return sum(answers) / len(answers), sum(judges) / len(judges), first_check[0]


def fit_in(args: argparse.Namespace, scene: Path, work: Path, when: str) -> Fit:
    work.mkdir()
    work.chmod(0o755)
    print(f"fit {when}: rendering {args.width}x{args.height} at {args.samples} samples ...",
          flush=True)  # fmt: skip
    fitted = trio.run(fit, args, scene, work)
    print(f"  frame {fitted.frame_alone_s:.2f} s alone, {fitted.frame_shared_s:.2f} s with "
          f"{args.workers} at once; frame fetch {fitted.fetch_s * 1000:.0f} ms, check (k={fitted.k}) "
          f"{fitted.check_s:.2f} s -> fixed "
          f"{fitted.check_overhead_s:.2f} s; a result prepared for its check in "
          f"{fitted.prepare_s * 1000:.0f} ms (fetch included); setup per job {fitted.setup_s:.2f} s; preflight "
          f"{fitted.preflight_s:.2f} s; challenge answer {fitted.answer_s:.2f} s, judged in "
          f"{fitted.judge_s:.2f} s; checker's first check meanwhile {fitted.first_check_s:.2f} s",
          flush=True)  # fmt: skip
    return fitted
