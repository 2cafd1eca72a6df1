"""A GPU owner's path without the repository: build the wheel, install it in a fresh
virtualenv, and run a devnet (anvil + worker + checker + client) and a paid job from it.

The fresh virtualenv gets the wheel (no dependencies) and sees the project's
dependencies through a plain path line in a ``.pth`` file — a path line does not
run the editable install's finder, and every command runs outside the checkout,
so the code that runs is the wheel's (asserted).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.anvil import find_anvil
from node.devnet.network import node_env
from tests.e2e.conftest import needs_stack

pytestmark = [pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["node", "protocol", "coordinator", "ledger", "explorer", "simulations"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (path,) = out.glob("pictor-*.whl")
    return path


def test_the_wheel_carries_every_file_the_packages_track(wheel: Path) -> None:
    """The explorer's templates and static files were missing: `pictor explorer run`
    from a wheel had no pages."""
    tracked = subprocess.run(["git", "ls-files", *PACKAGES], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [f for f in tracked if f not in names] == []


@pytest.fixture
def venv(wheel: Path, tmp_path: Path) -> Iterator[Path]:
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=120)
    subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=120)  # fmt: skip
    site = subprocess.run([str(env / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    Path(site, "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    yield env


@needs_stack
def test_a_worker_installed_from_the_wheel_renders_and_is_paid(venv: Path, tmp_path: Path) -> None:
    bin_dir, work = venv / "bin", tmp_path / "work"
    work.mkdir()
    anvil = find_anvil()  # outside a checkout the node finds anvil on PATH (or PICTOR_ANVIL)
    assert anvil is not None
    env = {**node_env(), "PATH": f"{bin_dir}:{anvil.parent}:{node_env().get('PATH', '')}"}

    def run(*argv: str, timeout: float = 240) -> str:
        done = subprocess.run(list(argv), cwd=work, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
        assert done.returncode == 0, f"{argv}: " + done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    where = run(str(bin_dir / "python"), "-c", "import node, ledger; print(node.__file__)")
    assert where.strip().startswith(str(venv)), where  # the wheel's code, not the checkout's
    pictor, devnet = str(bin_dir / "pictor"), work / "devnet"
    run(pictor, "devnet", "up", "--workers", "1", "--checkers", "1", "--dir", str(devnet))
    try:
        run(pictor, "example-scene", "scene.blend", "--frames", "2")
        out = run(pictor, "job", "submit", "scene.blend", "--frames", "1-2", "--max-price",
                  "0.2eth", "--yes", "--resolution", "64x48", "--samples", "4", "--out",
                  str(work / "frames"), "--data-dir", str(devnet / "client"))  # fmt: skip
        assert sorted(p.name for p in (work / "frames").iterdir()) == [
            "frame_0001.png",
            "frame_0002.png",
        ], out
        status = run(pictor, "status", "--data-dir", str(devnet / "worker1"))
        assert re.search(r"frames rendered\s+[12]\b", status), status
        assert "earned (paid on chain)" in status, status
    finally:
        subprocess.run([pictor, "devnet", "down", "--dir", str(devnet)], cwd=work, env=env,
                       capture_output=True, timeout=120, check=False)  # fmt: skip
        shutil.rmtree(devnet, ignore_errors=True)
