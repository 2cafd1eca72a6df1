"""The dashboard in a real headless Chromium against a real devnet (anvil, Blender, three
``pictor node run`` processes): an artist drops a .blend, reads the estimate, submits,
watches the frames arrive as thumbnails, downloads them, cancels a second job; the
worker's page shows its earnings paid on chain; the checker's page lists its verdicts.

Screenshots go to test-artifacts/ui/ (git-ignored). One devnet for the module keeps
this to about a minute.
"""

from __future__ import annotations

import base64
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.anvil import find_anvil
from node.cli.ui_cmd import login_link
from node.devnet.network import DevnetConfig, LocalDevnet
from node.devnet.scene import build_scene
from protocol.money import format_eth
from tests.explorer.test_browser import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
JOB_TIMEOUT_MS = 180_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None or shutil.which("blender") is None or find_anvil() is None,
        reason="needs chromium, blender and anvil",
    ),
]


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDevnet]:
    with LocalDevnet(
        tmp_path_factory.mktemp("ui-devnet"), DevnetConfig(workers=1, checkers=1)
    ) as net:
        net.api("client").wait_until("/v1/network", lambda v: len(v) >= 2, 60)
        yield net


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_scene(tmp_path_factory.mktemp("ui-scene") / "spheres.blend", 6)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_dashboard(browser: Any, net: LocalDevnet, name: str) -> Any:
    api = net.api(name)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(login_link(api.base_url, api.token))
    page.wait_for_selector("#live.ok")
    # The token left the address bar, and no request carried it in its URL.
    assert api.token not in page.url
    assert not any(api.token in url for url in requests)
    return page


def test_submit_watch_download_and_cancel(
    devnet: LocalDevnet, scene: Path, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_dashboard(browser, devnet, "client")
    expect(page.locator("#view-render")).to_be_visible()  # a client-only node opens on Render
    page.set_input_files("#file", str(scene))
    expect(page.locator("#scene-name")).to_have_text("spheres.blend")
    page.fill("#frames", "1-2")
    page.fill("#res-x", "64")
    page.fill("#res-y", "48")
    page.fill("#samples", "8")
    page.click("#estimate")
    expect(page.locator("#quote-estimate")).to_contain_text("ETH", timeout=60_000)
    assert page.input_value("#max-price") != ""  # proposed from the worker's advert
    page.screenshot(path=str(ARTIFACTS / "render-estimate.png"), full_page=True)
    page.click("#submit")
    card = page.locator(".job").first
    expect(card.locator(".status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    thumbs = card.locator(".thumbs img")
    expect(thumbs).to_have_count(2)
    expect(thumbs.first).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('.job .thumbs img')].every(i => i.naturalWidth === 64)"
    )
    page.screenshot(path=str(ARTIFACTS / "render-completed.png"), full_page=True)
    with page.expect_download() as download:
        card.locator(".download-zip").click()
    saved = tmp_path / "frames.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert sorted(archive.namelist()) == ["frame_0001.png", "frame_0002.png"]
        assert archive.read("frame_0001.png")[:8] == b"\x89PNG\r\n\x1a\n"

    # A second job, its scene dropped on the page this time, cancelled before it finishes.
    drop_file(page, "#drop", scene, "dropped.blend")
    expect(page.locator("#scene-name")).to_have_text("dropped.blend")
    page.fill("#frames", "1-6")
    page.click("#estimate")  # the scene's inspection is remembered: this one is quick
    expect(page.locator("#quote-estimate")).to_contain_text("6 frame(s)")
    page.click("#submit")
    expect(page.locator(".job")).to_have_count(2, timeout=60_000)  # submit inspects the scene again
    second = page.locator(".job").first
    second.locator(".cancel").click()
    expect(second.locator(".status")).to_have_text("cancelled", timeout=60_000)
    expect(second.locator(".cancel")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "render-cancelled.png"), full_page=True)
    jobs = devnet.api("client").get("/v1/client/jobs")
    assert sorted(j["outcome"] for j in jobs) == ["cancelled", "completed"]


def test_worker_sees_its_earnings_paid_on_chain(devnet: LocalDevnet, browser: Any) -> None:
    from playwright.sync_api import expect

    api = devnet.api("worker1")
    roles = api.wait_until("/v1/roles", lambda r: r["payee"]["paid_wei"] > 0 and
                           r["payee"]["owed_wei"] == 0, 90)  # fmt: skip
    page = open_dashboard(browser, devnet, "worker1")
    expect(page.locator("#view-worker")).to_be_visible()  # a worker opens on its own view
    paid_eth = api.get("/v1/roles")["payee"]["paid_wei"]
    assert paid_eth == roles["payee"]["paid_wei"]
    expect(page.locator("#earned-paid")).to_have_text(format_eth(paid_eth))
    expect(page.locator("#earned-owed")).to_have_text("0 ETH")
    expect(page.locator("#worker-rendered")).not_to_have_text("0")
    expect(page.locator("#vouchers tbody tr").first).to_contain_text("ETH")
    page.screenshot(path=str(ARTIFACTS / "worker-earnings.png"), full_page=True)
    page.click("#tabs button[data-view=cloud]")
    expect(page.locator("#gpu-detail")).not_to_be_empty()  # "no NVIDIA driver" on CI
    page.screenshot(path=str(ARTIFACTS / "cloud.png"), full_page=True)


def test_checker_sees_its_verdicts_and_fees(devnet: LocalDevnet, browser: Any) -> None:
    from playwright.sync_api import expect

    page = open_dashboard(browser, devnet, "checker1")
    expect(page.locator("#view-checker")).to_be_visible()
    verdicts = page.locator("#verdicts tbody tr")
    expect(verdicts.first).to_contain_text("passed", timeout=60_000)
    assert verdicts.count() >= 2
    assert page.locator("#verdicts td.rejected").count() == 0
    expect(page.locator("#fees tbody tr").first).to_contain_text("ETH", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "checker-verdicts.png"), full_page=True)


def drop_file(page: Any, target: str, path: Path, name: str) -> None:
    """Drag ``path`` from the desktop onto ``target``: a real ``drop`` event whose
    DataTransfer holds the file (what a browser makes of a file dropped from outside)."""
    data = base64.b64encode(path.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([data, name]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name));
            return transfer;
        }""",
        [data, name],
    )
    page.dispatch_event(target, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(target, "drop", {"dataTransfer": transfer})
