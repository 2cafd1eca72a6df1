"""Node configuration: TOML file + ``PICTOR_*`` environment + CLI flags.

Parsed once, at start, into a frozen :class:`NodeConfig` with every default
resolved (after ddht's ``boot_info``). Later sources win: defaults < file <
environment < flags. Unknown keys and bad values are refused with a
:class:`ConfigError` that names the key and what it accepts; nothing is
silently dropped (hypercorn's habit we do not copy).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.market.config import MarketConfig
from protocol.messages import Role

CONFIG_FILE = "config.toml"
ENV_PREFIX = "PICTOR_"
# PICTOR_* variables that belong to tools around the node, not to its config:
# they are left alone instead of being refused as unknown keys.
NOT_CONFIG_ENV = frozenset({"PICTOR_DATA_DIR", "PICTOR_ANVIL", "PICTOR_BPY_PYTHON"})
NOT_CONFIG_ENV_PREFIXES = ("PICTOR_TEST_",)
LOG_LEVELS = ("debug", "info", "warning", "error")
REACHABILITY = ("auto", "public", "private")
DHT_MODES = ("auto", "server", "client", "off")
RENDER_DEVICES = ("auto", "CPU", "CUDA", "OPTIX")
_CHOICES = {
    "log_level": LOG_LEVELS, "reachability": REACHABILITY, "dht": DHT_MODES,
    "render_device": RENDER_DEVICES,
}  # fmt: skip


# checker_stake_wei's default: what one claim of a checker's pass takes, the escrow's
# SLASH_CAP as its chain says (node.roles.requester resolves it).
PASS_CLAIM_STAKE = -1


class ConfigError(ValueError):
    """A config key is unknown or its value is refused; the message says which."""


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    listen_addrs: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/4001",)
    bootstrap: tuple[str, ...] = ()
    mdns: bool = True
    api_port: int = 7878
    roles: tuple[Role, ...] = ()
    advert_interval_s: float = 30.0
    log_json: bool = False
    log_level: str = "info"
    # Gossipsub's own per-peer-per-topic limit (default 10/s, own publishes
    # included) would silently drop our bursts: it sits well above our rates and
    # our peer scorer does the real rate limiting.
    gossip_rate_per_s: float = 1000.0
    gossip_queue_len: int = 4096
    peer_rate_per_s: float = 50.0
    peer_burst: float = 200.0
    ban_score: float = 100.0
    ban_s: float = 3600.0
    replay_skew_s: float = 60.0
    request_timeout_s: float = 10.0
    max_request_bytes: int = 1 << 20
    max_response_bytes: int = 16 << 20
    redial_max_backoff_s: float = 300.0
    # Behind NAT (issue 14): "private" holds relay slots, "auto" asks the relays
    # (AutoNAT); relays default to the bootstrap peers.
    reachability: str = "auto"
    relays: tuple[str, ...] = ()
    hole_punch: bool = True
    # Kademlia DHT (rendezvous, peer routing): "auto" serves it when the node
    # is public and only asks when it may be behind NAT.
    dht: str = "auto"
    # QUIC beside TCP (udp, same port): listened on, and dialled first when a peer offers it.
    quic: bool = False
    shutdown_grace_s: float = 5.0
    # Roles (issue 7): settlement chain, the worker's ask, market lease length.
    chain_rpc_url: str = ""
    chain_id: int = 0
    escrow_address: str = ""
    price_wei_per_ru: int = 10**12
    # As a requester: workers and checkers must hold this much confirmed stake (0: none).
    min_stake_wei: int = 0
    # As a requester with a chain: ask only checkers whose confirmed stake is at least
    # this. Default (-1): what one claim of a missed plant takes, the escrow's SLASH_CAP
    # read from the chain (docs/VERIFICATION.md, "Checker stake"); 0: nothing beyond
    # min_stake_wei. Without a chain: no requirement.
    checker_stake_wei: int = PASS_CLAIM_STAKE
    # As a requester: live leases all unproven workers together may hold (0: no limit,
    # and no capacity challenges). Unproven: no confirmed stake, no accepted frame, no
    # passed challenge (protocol.capacity; docs/VERIFICATION.md, "Capacity challenges").
    trial_leases: int = 2
    lease_s: float = 60.0
    # Forced errors: checked results per million that also get a plant (issue 17).
    plant_rate_ppm: int = MarketConfig().plant_rate_ppm
    # Requests kept out at one checker (protocol.verification.with_room); 0: no cap.
    checks_per_checker: int = MarketConfig().checks_per_checker
    render_threads: int = 0
    render_device: str = "auto"  # Cycles device: auto (from the NVML probe), CPU, CUDA, OPTIX
    warm_renders: int = 2  # warm Blender processes (one per job's scene); 0: one per render
    warm_idle_s: float = 300.0  # a warm process is closed after this long unused
    adversary: str = ""  # test-only misbehaviour (node.roles.context.ADVERSARY_MODES); never on a real node

    @property
    def dht_mode(self) -> str:
        """The DHT mode the network runs: "server", "client" or "off"."""
        if self.dht != "auto":
            return self.dht
        return "server" if self.reachability == "public" else "client"

    @property
    def api_token_path(self) -> Path:
        return self.data_dir / "api.token"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "node.key"

    @property
    def payment_key_path(self) -> Path:
        return self.data_dir / "payment.key"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "node.sqlite3"

    @property
    def api_addr_path(self) -> Path:
        # Written by the running node so the CLI finds an ephemeral port (api_port = 0).
        return self.data_dir / "api.addr"


_FIELDS = {f.name: f for f in dataclasses.fields(NodeConfig) if f.name != "data_dir"}


def default_data_dir() -> Path:
    env = os.environ.get(ENV_PREFIX + "DATA_DIR")
    return Path(env) if env else Path.home() / ".pictor"


def _accepted(name: str) -> str:
    kind = _FIELDS[name].type
    if name == "roles":
        return "a list of " + ", ".join(r.value for r in Role)
    if name in _CHOICES:
        return "one of " + ", ".join(_CHOICES[name])
    if name == "checker_stake_wei":
        return "an integer >= 0, or -1: the escrow's SLASH_CAP"
    return {
        "bool": "true or false",
        "int": "an integer >= 0",
        "float": "a number >= 0",
        "str": "a string",
        "tuple[str, ...]": "a list of strings",
    }.get(str(kind), str(kind))


def _coerce(name: str, raw: Any, source: str) -> Any:
    """Turn a TOML value or an environment string into the field's type."""
    kind = str(_FIELDS[name].type)
    bad = ConfigError(f"{source}: bad value {raw!r} for '{name}'; accepted: {_accepted(name)}")
    if isinstance(raw, str) and kind.startswith("tuple"):
        raw = [part.strip() for part in raw.split(",") if part.strip()]
    try:
        if kind == "bool":
            if isinstance(raw, str) and raw.lower() in ("true", "1", "yes", "false", "0", "no"):
                return raw.lower() in ("true", "1", "yes")
            if isinstance(raw, bool):
                return raw
            raise bad
        if kind in ("int", "float"):
            if isinstance(raw, bool):
                raise bad
            value = int(raw) if kind == "int" else float(raw)
            if value < 0 and not (name == "checker_stake_wei" and value == PASS_CLAIM_STAKE):
                raise bad
            return value
        if kind == "str":
            if not isinstance(raw, str) or (name in _CHOICES and raw not in _CHOICES[name]):
                raise bad
            return raw
        if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
            raise bad
        return tuple(Role(v) for v in raw) if name == "roles" else tuple(raw)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise bad from exc


def _check_keys(values: Mapping[str, Any], source: str) -> None:
    for key in values:
        if key not in _FIELDS:
            raise ConfigError(
                f"{source}: unknown config key '{key}'; accepted keys: {', '.join(sorted(_FIELDS))}"
            )


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_CONFIG_ENV:
            continue
        if name.startswith(NOT_CONFIG_ENV_PREFIXES):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        _check_keys({key: value}, f"environment {name}")
        values[key] = _coerce(key, value, f"environment {name}")
    return values


def load_config(
    data_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> NodeConfig:
    """Resolve the node's config from file, environment and flags (later wins)."""
    values: dict[str, Any] = {}
    path = data_dir / CONFIG_FILE
    if path.exists():
        try:
            file_values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        _check_keys(file_values, str(path))
        values.update({k: _coerce(k, v, str(path)) for k, v in file_values.items()})
    values.update(_from_env(os.environ if environ is None else environ))
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    _check_keys(flags, "command line")
    values.update({k: _coerce(k, v, "command line") for k, v in flags.items()})
    if "api_port" in values and values["api_port"] > 65535:
        raise ConfigError(f"bad value {values['api_port']} for 'api_port'; accepted: 0..65535")
    return NodeConfig(data_dir=data_dir, **values)


CONFIG_TEMPLATE = """\
# Pictor node configuration. Every key is optional; shown are the defaults.
# Environment variables PICTOR_<KEY> (e.g. PICTOR_API_PORT=7900) and command
# line flags override this file. Unknown keys are refused.

# libp2p listen addresses (TCP).
# listen_addrs = ["/ip4/0.0.0.0/tcp/4001"]

# Peers to dial at start, full multiaddrs with /p2p/<peer id>.
# bootstrap = []

# Find peers on the local network with mDNS.
# mdns = true

# Local HTTP API, always bound to 127.0.0.1; 0 picks a free port.
# api_port = 7878

# Roles this node plays: worker, checker, client (flags --worker etc. add to them).
# roles = []

# Seconds between signed CapacityAdverts on /pictor/1/capacity.
# advert_interval_s = 30.0

# Logging: JSON lines instead of text, and level (debug, info, warning, error).
# log_json = false
# log_level = "info"

# Peer policing: messages per second and burst per peer, the score at which
# a peer is banned, and how long a ban lasts.
# peer_rate_per_s = 50.0
# peer_burst = 200.0
# ban_score = 100.0
# ban_s = 3600.0

# Accepted clock difference for signed messages.
# replay_skew_s = 60.0

# Behind a home router: "private" reserves a slot at each relay and advertises
# only /p2p-circuit addresses; "auto" asks the relays (AutoNAT) first; "public"
# never uses a relay. Relays (full multiaddrs) default to the bootstrap peers.
# hole_punch tries DCUtR to turn relayed connections into direct ones.
# reachability = "auto"
# relays = []
# hole_punch = true

# Kademlia DHT: find peers through any DHT server (a coordinator) without a
# bootstrap list naming them. "auto": server when reachability = "public",
# client (asks, never answers) otherwise; "server", "client" or "off".
# dht = "auto"

# Also listen on QUIC (udp/<port>/quic-v1 beside each tcp address) and dial a
# peer's QUIC address first, falling back to TCP. Off by default: py-libp2p's
# QUIC moved bulk data ~30x slower than its TCP here (docs/NODE.md).
# quic = false

# Seconds to drain work on SIGINT/SIGTERM before exiting.
# shutdown_grace_s = 5.0

# Settlement chain (empty rpc url: no on-chain payment) and the escrow contract.
# chain_rpc_url = ""
# chain_id = 0
# escrow_address = ""

# Worker: asking price per render unit (wei), Blender threads (0 = all cores).
# price_wei_per_ru = 1000000000000
# render_threads = 0
# Cycles device: "auto" picks OptiX, then CUDA, when the NVML probe finds a GPU and
# this Blender can use it, else the CPU.
# render_device = "auto"
# Warm Blender processes kept (one per job's scene, frames and checks alike), and how
# long an unused one is kept; 0 renders every frame and check in a new process.
# warm_renders = 2
# warm_idle_s = 300.0

# Requester: seconds a lease lasts without a heartbeat.
# lease_s = 60.0

# Requester: forced errors, per million checked results: a planted bad frame
# that tests the checker (docs/VERIFICATION.md, "Forced errors").
# plant_rate_ppm = 100000

# Requester: requests kept out at one checker at a time, the rest wait here (0: no
# cap; docs/MARKET.md, "Checks wait for a checker with room").
# checks_per_checker = 1

# Requester: stake workers and checkers must hold (wei; 0: none; a worker's once more
# for each other job the escrow counts it open in), and what checkers
# alone must hold: -1 is what one claim of a missed plant takes (the escrow's
# SLASH_CAP, read from the chain), 0 nothing more (docs/VERIFICATION.md, "Checker stake").
# min_stake_wei = 0
# checker_stake_wei = -1
"""
