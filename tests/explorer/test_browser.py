"""The website in a real headless Chromium (Debian's, driven by Playwright).

Overview loads with the indexed numbers; a node joining the network shows up
without a reload; search finds a node and a job; a bad or unknown id shows
the error page. Screenshots go to test-artifacts/explorer/ (git-ignored).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol import NodeKey
from protocol.messages import ClosedOutcome, JobClosed
from protocol.topics import CAPACITY_TOPIC, JOBS_TOPIC, RECORD_TOPIC
from tests.explorer import factory as f
from tests.explorer.live_server import LiveServer, live_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "explorer"
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None, reason="apt-get install chromium chromium-driver"
    ),
]


@pytest.fixture(scope="module")
def keys() -> list[NodeKey]:
    return [NodeKey.generate() for _ in range(3)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, keys: list[NodeKey]) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("browser"), keys) as live:
        worker, requester, _ = keys
        live.publish(worker, CAPACITY_TOPIC, f.sign(worker, f.advert(worker, gpus=("RTX 4090",))))
        live.publish(requester, CAPACITY_TOPIC, f.sign(requester, f.advert(requester, gpus=())))
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def test_overview_loads_and_updates_live(
    server: LiveServer, keys: list[NodeKey], page: Any
) -> None:
    from playwright.sync_api import expect

    response = page.goto(server.url + "/")
    assert response.status == 200
    expect(page.locator("#nodes-online")).to_have_text("2")
    expect(page.locator("text=RTX 4090")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
    newcomer = keys[2]
    server.publish(newcomer, CAPACITY_TOPIC, f.sign(newcomer, f.advert(newcomer)))
    # No reload: live.js polls the JSON twin and rewrites the number.
    expect(page.locator("#nodes-online")).to_have_text("3", timeout=10_000)
    expect(page.locator("text=NVIDIA H100")).to_be_visible()  # the GPU table follows too
    expect(page.locator("#live-status")).to_contain_text("Live")
    page.screenshot(path=str(ARTIFACTS / "overview-live.png"), full_page=True)


def test_search_finds_a_node_and_a_job(server: LiveServer, keys: list[NodeKey], page: Any) -> None:
    from playwright.sync_api import expect

    worker, requester, _ = keys
    announce = f.job(requester, frames=3)
    server.publish(requester, JOBS_TOPIC, f.sign(requester, announce))
    page.goto(server.url + "/")
    page.fill("#q", worker.node_id.text)
    page.press("#q", "Enter")
    expect(page.locator("#node-id")).to_have_text(worker.node_id.text)
    assert page.url.endswith("/nodes/" + worker.node_id.text)
    page.screenshot(path=str(ARTIFACTS / "node.png"), full_page=True)
    page.fill("#q", announce.job_id.hex())
    page.press("#q", "Enter")
    expect(page.locator("#job-id")).to_have_text(announce.job_id.hex())
    expect(page.locator(".pill.open").first).to_contain_text("open: 3")
    page.screenshot(path=str(ARTIFACTS / "job.png"), full_page=True)


def test_a_finished_job_shows_its_frames_workers_and_verdicts(
    server: LiveServer, keys: list[NodeKey], page: Any
) -> None:
    """The requester's public work record (issue 16): a finished, paid job used to read
    "running" with every frame "open", no workers and no verdicts."""
    from playwright.sync_api import expect

    worker, requester, checker = keys
    announce = f.job(requester, frames=2)
    job_id = announce.job_id
    server.publish(requester, JOBS_TOPIC, f.sign(requester, announce))
    for frame in (1, 2):
        record = f.work_record(worker, checker, job_id, frame, passed=True, task=10 + frame)
        server.publish(requester, RECORD_TOPIC, f.sign(requester, record))
    closed = JobClosed(job_id, ClosedOutcome.COMPLETED, 2, 0)
    server.publish(requester, RECORD_TOPIC, f.sign(requester, closed))
    page.goto(server.url + "/jobs/" + job_id.hex())
    expect(page.locator("[data-live=status]")).to_have_text("done")
    expect(page.locator(".pill.accepted").first).to_contain_text("accepted: 2")
    assert page.locator(".pill.open").count() == 0
    workers = page.locator("section:has(h2:text-is('Workers')) li")
    expect(workers).to_have_count(1)
    expect(workers.first).to_contain_text("2 frames")
    assert workers.first.locator("a").get_attribute("href") == "/nodes/" + worker.node_id.text
    verdicts = page.locator("section:has(h2:text-is('Verdicts')) tbody tr")
    expect(verdicts).to_have_count(2)
    expect(verdicts.first).to_contain_text("passed")
    checker_link = verdicts.first.locator("a").nth(1)
    assert checker_link.get_attribute("href") == "/nodes/" + checker.node_id.text
    page.screenshot(path=str(ARTIFACTS / "job-finished.png"), full_page=True)
    # the worker's page shows its history from the same record
    page.goto(server.url + "/nodes/" + worker.node_id.text)
    expect(page.locator(f"a[href='/jobs/{job_id.hex()}']").first).to_be_visible()
    expect(page.locator("body")).to_contain_text("2 ✓ / 0 ✗")


def test_bad_and_unknown_ids_show_the_error_page(server: LiveServer, page: Any) -> None:
    from playwright.sync_api import expect

    unknown = page.goto(server.url + "/nodes/" + NodeKey.generate().node_id.text)
    assert unknown.status == 404
    expect(page.locator("h1")).to_contain_text("404")
    page.screenshot(path=str(ARTIFACTS / "not-found.png"), full_page=True)
    bad = page.goto(server.url + "/jobs/not-a-job")
    assert bad.status == 400
    expect(page.locator("h1")).to_contain_text("400")
    page.fill("#q", "definitely not an id")
    page.press("#q", "Enter")
    expect(page.locator("h1")).to_contain_text("400")


def test_usable_on_a_phone(server: LiveServer, browser: Any) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.goto(server.url + "/")
    # Responsive: nothing wider than the screen (tables scroll inside their own box).
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    assert phone.locator("#q").is_visible()
    phone.screenshot(path=str(ARTIFACTS / "overview-phone.png"), full_page=True)
    context.close()
