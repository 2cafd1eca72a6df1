"""`pictor job submit` proposes a price from adverts and asks; `job status` says why a job
stalls (fast; the node's API is played by a stub serving the JSON the real views return)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi import HTTPException
from typer.testing import CliRunner

import node.cli.job as job_cli
from node.api.jobs_routes import find_job
from node.cli.job_view import JobClock, eta_text
from node.cli.main import app
from node.cli.names import short_peer
from protocol.identity import NodeKey

ETH = 10**18
BUILD = "blender-3.4.1"
WORKERS = [NodeKey(bytes([i]) * 32).node_id for i in range(1, 4)]


def advert(peer: str, roles: list[str], price_wei_per_ru: int = 10**16) -> dict[str, Any]:
    return {"peer_id": peer, "roles": roles, "gpus": [], "renderer_builds": [BUILD],
            "score_ru_per_hour": 0, "price_wei_per_ru": str(price_wei_per_ru),
            "stake_wei": "0", "payment_address": "0x" + "00" * 20, "free_slots": 1,
            "addrs": [], "advert_timestamp_ms": 0, "received_ms": 0}  # fmt: skip


DEVNET = [advert(w.text, ["worker"]) for w in WORKERS] + [
    advert(NodeKey(bytes([9]) * 32).node_id.text, ["checker"])
]
ROLES = {"renderer_build": BUILD, "has_chain": True, "checker_fee_bps": 500,
         "transactions": []}  # fmt: skip


def stalled_job(max_price_wei: int) -> dict[str, Any]:
    return {"job_id": "ab" * 32, "state": "announced", "outcome": None,
            "frames": {"1": "pending", "2": "pending", "3": "pending"}, "accepted": {},
            "failed": {}, "frames_total": 3, "frames_accepted": 0, "workers": [],
            "blocklisted": [], "awards": 0, "spent_wei": 0, "budget_wei": 3 * max_price_wei,
            "refund_wei": 0, "refunded": False, "started_ms": 1_000_000, "finished_ms": None,
            "out_dir": "/tmp/out", "now_ms": 1_400_000, "deadline_ms": 8_200_000,
            "max_price_wei_per_frame": max_price_wei, "renderer_build": BUILD,
            "ru_per_frame": 10, "assurance": "normal", "escrowed": True}  # fmt: skip


class StubApi:
    """Serves canned JSON for the routes the CLI reads; records what it posts."""

    def __init__(self, adverts: list[dict[str, Any]], job: dict[str, Any] | None = None) -> None:
        self.adverts = adverts
        self.job_json = job
        self.posted: list[tuple[str, Any]] = []
        self.estimated: list[Any] = []
        self.ru_per_frame = 10

    def get(self, path: str, timeout_s: float = 10.0) -> Any:
        if path.startswith("/v1/network"):
            return self.adverts
        if path == "/v1/roles":
            return ROLES
        if path.endswith("/transactions"):
            return [{"what": "deposit", "tx": "cd" * 32, "gas": 90_000}]
        raise AssertionError(path)

    def post(self, path: str, body: dict[str, Any] | None = None, **_: Any) -> Any:
        if path == "/v1/client/scenes/estimate":  # the node's preflight prices the scene
            self.estimated.append(body)
            return {"ru_per_frame": self.ru_per_frame, "settings": {}}
        self.posted.append((path, body))
        return {**stalled_job(body["max_price_wei_per_frame"] if body else 1),
                "frames": {str(f): "pending" for f in (body or {}).get("frames", [1])}}

    def job(self, job_id: str, wait_s: float = 0.0) -> dict[str, Any]:
        assert self.job_json is not None
        return self.job_json


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    path = tmp_path / "s.blend"
    path.write_bytes(b"BLENDER-v304" + bytes(64))
    return path


def run(monkeypatch: pytest.MonkeyPatch, api: StubApi, *args: str, stdin: str = "") -> Any:
    monkeypatch.setattr(job_cli, "_api", lambda data_dir: api)
    return CliRunner().invoke(app, list(args), input=stdin)


def test_submit_proposes_a_price_the_devnet_workers_accept(
    monkeypatch: pytest.MonkeyPatch, scene: Path
) -> None:
    api = StubApi(DEVNET)
    result = run(monkeypatch, api, "job", "submit", str(scene), "--frames", "1-3", "--yes",
                 "--no-wait")  # fmt: skip
    assert result.exit_code == 0, result.output
    ((path, body),) = api.posted
    assert path == "/v1/client/jobs"
    assert body["max_price_wei_per_frame"] == 11 * ETH // 100  # every ask 0.1 ETH, + 10 %
    assert "cheapest ask 0.1 ETH per frame" in result.output
    assert "max      0.11 ETH per frame (proposed" in result.output
    # normal asks two checkers of a new worker's frame (stop 37): both fees are counted
    assert "estimate at most 0.33 ETH for 3 frame(s)" in result.output  # 3 x (0.1 + 2 x 0.005)
    # 3 x 0.11 x (1 + 3 x 5 %), and two retries with two checks: 2 x 0.11 x (1 + 2 x 5 %)
    assert "escrow   0.6215 ETH held until the deadline" in result.output
    # one checker about: the frames are accepted on its pass, and the user is told
    assert "accepted on 1 checker's pass" in " ".join(result.output.split())


def test_submit_at_high_assurance_escrows_two_checks_a_frame_and_warns_of_one_checker(
    monkeypatch: pytest.MonkeyPatch, scene: Path
) -> None:
    """``high`` asks two checkers of a new worker's frame: the estimate counts both fees,
    the escrow has room for both and a re-check (protocol.verification.checks_per_frame;
    sized for one, the second check ran out of budget), and with one checker about the
    user is told before anything is escrowed."""
    api = StubApi(DEVNET)
    result = run(monkeypatch, api, "job", "submit", str(scene), "--frames", "1-3", "--yes",
                 "--no-wait", "--assurance", "high")  # fmt: skip
    assert result.exit_code == 0, result.output
    ((_, body),) = api.posted
    assert body["assurance"] == "high"
    assert "estimate at most 0.33 ETH for 3 frame(s)" in result.output  # 3 x (0.1 + 2 x 0.005)
    # 3 x 0.11 x (1 + 3 x 5 %), and two retries with two checks: 2 x 0.11 x (1 + 2 x 5 %)
    assert "escrow   0.6215 ETH held" in result.output
    assert "assurance high asks 2 different checkers" in " ".join(result.output.split())
    bad = run(monkeypatch, StubApi(DEVNET), "job", "submit", str(scene), "--yes", "--no-wait",
              "--assurance", "paranoid")  # fmt: skip
    assert bad.exit_code == 2 and "paranoid" in bad.output


def test_submit_prices_the_scene_s_own_render_units(
    monkeypatch: pytest.MonkeyPatch, scene: Path
) -> None:
    api = StubApi(DEVNET)
    api.ru_per_frame = 1  # a small scene: a tenth of the asks above
    result = run(monkeypatch, api, "job", "submit", str(scene), "--frames", "1-3", "--yes",
                 "--no-wait", "--resolution", "64x48", "--samples", "8")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert api.estimated == [{"scene": str(scene.resolve()), "resolution": [64, 48], "samples": 8}]
    ((_, body),) = api.posted
    assert body["max_price_wei_per_frame"] == 11 * ETH // 1000
    assert "scene: 1 RU per frame" in result.output


def test_submit_without_a_terminal_or_yes_refuses_and_names_yes(
    monkeypatch: pytest.MonkeyPatch, scene: Path
) -> None:
    api = StubApi(DEVNET)
    result = run(monkeypatch, api, "job", "submit", str(scene), "--frames", "1-3")
    assert result.exit_code == 1
    assert "--yes" in result.output and "not a terminal" in result.output
    assert api.posted == []  # nothing escrowed


def test_submit_below_every_ask_warns_with_the_cheapest_ask(
    monkeypatch: pytest.MonkeyPatch, scene: Path
) -> None:
    api = StubApi(DEVNET)
    result = run(monkeypatch, api, "job", "submit", str(scene), "--max-price", "0.02eth",
                 "--yes", "--no-wait")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "every ask is above your max price: cheapest ask 0.1 ETH per frame" in result.output
    assert api.posted[0][1]["max_price_wei_per_frame"] == 2 * 10**16


def test_submit_with_no_worker_for_the_build_fails_before_escrow(
    monkeypatch: pytest.MonkeyPatch, scene: Path
) -> None:
    api = StubApi([{**a, "renderer_builds": ["blender-4.2.0"]} for a in DEVNET])
    result = run(monkeypatch, api, "job", "submit", str(scene), "--yes")
    assert result.exit_code == 1
    assert f"no worker advertises {BUILD}" in result.output and "blender-4.2.0" in result.output
    assert api.posted == []


def test_status_explains_a_job_whose_max_price_is_below_every_ask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = StubApi(DEVNET, stalled_job(2 * 10**16))
    result = run(monkeypatch, api, "job", "status", "abab")
    assert result.exit_code == 0, result.output
    assert "not moving" in result.output
    assert "every ask is above your max price 0.02 ETH per frame: cheapest ask 0.1 ETH" in (
        result.output
    )
    assert "--max-price 0.1eth" in result.output
    assert "deposit " + "cd" * 32 in result.output  # the job's own transaction, in full


def test_status_of_a_job_with_no_checker_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    workers_only = [a for a in DEVNET if "worker" in a["roles"]]
    api = StubApi(workers_only, stalled_job(ETH))
    result = run(monkeypatch, api, "job", "status", "ab")
    assert "no checker advertises" in result.output


def test_elapsed_counts_from_the_jobs_start_not_the_followers() -> None:
    clock = JobClock()
    job = stalled_job(ETH)  # started 400 s ago by the node's clock
    clock.update(job)
    elapsed = clock.elapsed_s()
    assert elapsed is not None and 400 <= elapsed < 401
    clock.update({**job, "outcome": "completed", "finished_ms": 1_011_000})
    assert clock.elapsed_s() == 11.0
    assert eta_text(10.0, 1, 3) == "20 s" and eta_text(10.0, 0, 3) == "—"


def test_one_display_name_for_hex_ids_and_peer_ids() -> None:
    key = WORKERS[0]
    assert short_peer(key.raw.hex()) == short_peer(key.text) == "…" + key.text[-8:]


class _Job:
    def __init__(self, job_id: bytes) -> None:
        self.job_id = job_id


def test_job_id_prefixes_resolve_uniquely_or_say_which_match() -> None:
    a, b = bytes.fromhex("ab12" + "00" * 30), bytes.fromhex("ab34" + "00" * 30)
    jobs: Any = {a: _Job(a), b: _Job(b)}
    assert find_job(jobs, a.hex()).job_id == a
    assert find_job(jobs, "AB12").job_id == a  # any unique prefix, any case
    assert find_job(jobs, a.hex()[:16]).job_id == a  # what `job list` prints
    with pytest.raises(HTTPException) as ambiguous:
        find_job(jobs, "ab")
    assert ambiguous.value.status_code == 409
    assert "ab12000000000000" in ambiguous.value.detail and "ab34000000000000" in ambiguous.value.detail
    for bad in ("ff", "xyz", "", "a" * 65):
        with pytest.raises(HTTPException) as missing:
            find_job(jobs, bad)
        assert missing.value.status_code == 404


def test_scene_check_on_a_non_blender_file_says_what_to_do(tmp_path: Path) -> None:
    text = tmp_path / "notes.blend"
    text.write_text("not a scene")
    result = CliRunner().invoke(app, ["scene", "check", str(text)])
    assert result.exit_code == 2
    assert "is not a Blender file" in result.output
    assert "pictor example-scene" in result.output


def test_demo_summary_names_each_node_once_and_lists_the_jobs_own_deposit() -> None:
    from node.devnet.demo import build_summary

    ids = {"client": NodeKey(bytes([7]) * 32).node_id.text, "worker1": WORKERS[0].text,
           "checker1": WORKERS[1].text}  # fmt: skip
    job = {**stalled_job(ETH), "outcome": "completed", "frames_accepted": 3,
           "workers": [WORKERS[0].raw.hex()], "spent_wei": 3 * ETH}  # fmt: skip
    payees = {"worker1": {"transactions": [{"what": "redeem", "tx": "01", "gas": 5}],
                          "payee": {"paid_wei": 3 * ETH}, "worker": {"rendered": 3},
                          "checker": None},
              "checker1": {"transactions": [], "payee": {"paid_wei": 0}, "worker": None,
                           "checker": {"checked": 3}}}  # fmt: skip
    own = [{"what": "deposit", "tx": "02", "gas": 9}]
    s = build_summary(job, own, payees, ids, 1.0, 2.0)
    worker = f"worker1 …{WORKERS[0].text[-8:]}"
    assert s["workers"] == [worker] and s["rendered_by"] == {worker: 3}
    assert s["checked_by"] == {f"checker1 …{WORKERS[1].text[-8:]}": 3}
    assert s["peer_ids"][worker] == WORKERS[0].text
    assert [(t["what"], t["tx"]) for t in s["transactions"]] == [("deposit", "02"), ("redeem", "01")]


def test_live_view_says_why_a_job_waits_once_it_had_time_to_start() -> None:
    from node.cli.job import StallWatch

    watch = StallWatch(StubApi(DEVNET))  # type: ignore[arg-type]
    job = stalled_job(2 * 10**16)
    assert watch.lines(job, elapsed_s=3.0) == []  # bids may still be coming
    (line,) = watch.lines(job, elapsed_s=400.0)
    assert "cheapest ask 0.1 ETH" in line
    moving = {**job, "frames": {**job["frames"], "1": "leased"}}
    assert watch.lines(moving, elapsed_s=400.0) == []


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("blender") is None, reason="needs blender")
def test_example_scene_writes_a_blend_that_scene_check_accepts(tmp_path: Path) -> None:
    out = tmp_path / "sample.blend"
    made = CliRunner().invoke(app, ["example-scene", str(out), "--frames", "2"])
    assert made.exit_code == 0, made.output
    assert out.read_bytes().startswith(b"BLENDER")
    assert f"pictor job submit {out} --frames 1-2" in made.output
    checked = CliRunner().invoke(app, ["scene", "check", str(out)])
    assert checked.exit_code == 0, checked.output
    assert "frames 1..2" in checked.output
