"""anvil (Foundry's dev node, from npm) as a shared local chain.

``find_anvil`` looks in $PICTOR_ANVIL, then the repository's npm prefix
(``npm install --prefix .cache/npm @foundry-rs/anvil``), then PATH. The npm
package's ``bin.mjs`` wrapper spawns node first; we call the platform binary in
``@foundry-rs/anvil-linux-amd64`` directly to save that start-up.

``start_anvil`` runs it on a free port (port 0, read back from its banner) with
funded dev accounts whose keys it reads from anvil's ``--config-out`` file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.backends import DevChain, connect

REPO_ROOT = Path(__file__).resolve().parent.parent
NPM_BINARY = REPO_ROOT / ".cache/npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
LISTENING_PREFIX = "Listening on "


class AnvilNotFound(RuntimeError):
    pass


def find_anvil() -> Path | None:
    """Path of the anvil binary, or None when it is not installed."""
    env_path = os.environ.get("PICTOR_ANVIL")
    if env_path:
        return Path(env_path) if Path(env_path).is_file() else None
    if NPM_BINARY.is_file():
        return NPM_BINARY
    on_path = shutil.which("anvil")
    return Path(on_path) if on_path else None


@dataclass
class AnvilChain(DevChain):
    process: subprocess.Popen[str] | None = field(default=None, repr=False)

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response.get("result")

    def advance_time(self, seconds: int) -> None:
        target_s = self.timestamp_s() + seconds
        self._rpc("evm_setNextBlockTimestamp", [target_s])
        self._rpc("evm_mine", [])

    def step_time_per_block(self, seconds: int) -> None:
        """Make each new block exactly ``seconds`` after its parent instead of
        following the wall clock (deterministic time for tests, like py-evm)."""
        self._rpc("anvil_setBlockTimestampInterval", [seconds])

    def mine(self, blocks: int = 1) -> None:
        self._rpc("anvil_mine", [hex(blocks)])

    def snapshot(self) -> Any:
        return self._rpc("evm_snapshot", [])

    def revert(self, snapshot_id: Any) -> None:
        self._rpc("evm_revert", [snapshot_id])

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_anvil(
    accounts: int = 10,
    chain_id: int = 31337,
    balance_ether: int = 10_000,
    binary: Path | None = None,
) -> AnvilChain:
    binary = binary or find_anvil()
    if binary is None:
        raise AnvilNotFound(
            "anvil not found: put it on PATH (`npm install -g @foundry-rs/anvil`), set "
            "PICTOR_ANVIL to its path, or in a checkout run "
            "`npm install --prefix .cache/npm @foundry-rs/anvil`"
        )
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "anvil.json"
        args = [str(binary), "--host", "127.0.0.1", "--port", "0", "--accounts", str(accounts),
                "--balance", str(balance_ether), "--chain-id", str(chain_id),
                "--config-out", str(config_path)]  # fmt: skip
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            address = _read_listen_address(process)
            keys = tuple(
                bytes.fromhex(k[2:]) for k in json.loads(config_path.read_text())["private_keys"]
            )
        except BaseException:
            process.kill()
            process.wait()
            raise
    rpc_url = f"http://{address}"
    # Keep draining stdout so a chatty anvil never blocks on a full pipe.
    threading.Thread(target=process.stdout.read, daemon=True, name="anvil-stdout").start()  # type: ignore[union-attr]
    return AnvilChain(
        w3=connect(rpc_url, chain_id), funded_keys=keys, rpc_url=rpc_url, process=process
    )


def _read_listen_address(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(LISTENING_PREFIX):
            return line[len(LISTENING_PREFIX) :].strip()
    raise RuntimeError(f"anvil exited (code {process.wait()}) before listening")
