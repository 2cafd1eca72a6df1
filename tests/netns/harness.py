"""A small internet on one machine: Linux network namespaces, veth pairs, nft NAT.

Theory of operation. ``Internet`` builds one "public" namespace (coordinator,
chain) and, per ``add_home``, a NAT router namespace and a host namespace
behind it::

    home host 10.<i>.0.2 --veth-- 10.<i>.0.1 router 100.64.<i>.2 --veth-- 100.64.<i>.1 public
                                               (nft masquerade)              + PUBLIC_IP on lo

The router forwards and masquerades everything leaving on its public veth
and silently drops whatever arrives there that is not a reply,
so a home host reaches the public namespace and appears there as
``100.64.<i>.2``; the public namespace forwards between routers (one
router's public address reaches another's, as on the internet) but has no
route into any home, and no home can reach another home's host — as behind
real home routers.

Both ends of every veth are created directly inside their namespaces, so
nothing is added to the machine's own namespace and interface names cannot
collide; namespace names carry a random per-run prefix, so parallel runs do
not collide either. ``close()`` (also on error, via the context manager, and
at interpreter exit as a last resort) kills every process started here and
deletes every namespace, which deletes the veths and nft tables with them.

Traffic rule (shared/DESIGN.md): tests send only to addresses inside the
namespaces they created; 100.64.0.0/10, 10.0.0.0/8 and PUBLIC_IP exist only in
these namespaces.

Code in the test process reaches a namespace two ways: ``Host.popen`` starts a
process inside it (``ip netns exec``), and ``Host.call`` runs a function on a
thread that has joined the namespace with ``setns(2)`` — sockets that thread
opens live in the namespace, so a test talks HTTP to a node's 127.0.0.1 API.
"""

from __future__ import annotations

import atexit
import ctypes
import multiprocessing
import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
PUBLIC_IP = "198.51.100.1"  # TEST-NET-2: the "public" namespace's own service address
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be made here; the message says why (tests skip with it)."""


def _sh(*argv: str, input_text: str | None = None) -> None:
    done = subprocess.run(argv, input=input_text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (apt: iproute2, nftables)"
    probe = f"pxprobe{secrets.token_hex(3)}"
    try:
        _sh("ip", "netns", "add", probe)
    except RuntimeError as exc:
        return f"cannot create a network namespace: {exc}"
    try:
        _sh("ip", "netns", "exec", probe, "nft", "add", "table", "ip", "probe")
    except RuntimeError as exc:
        return f"nftables refused inside a namespace: {exc}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], check=False, capture_output=True)
    return None


@dataclass
class Host:
    """One namespace that runs processes: the public one or a host behind a router."""

    ns: str
    ip: str
    internet: Internet

    def exec(self, *argv: str) -> None:
        _sh("ip", "netns", "exec", self.ns, *argv)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside this namespace; ``close()`` kills it if still running."""
        process = subprocess.Popen(["ip", "netns", "exec", self.ns, *argv], **kwargs)
        self.internet.processes.append(process)
        return process

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a thread inside this namespace; its sockets stay there."""
        result: list[Any] = []
        errors: list[BaseException] = []

        def enter_and_run() -> None:
            try:
                fd = os.open(f"/run/netns/{self.ns}", os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns into {self.ns} failed")
                finally:
                    os.close(fd)
                result.append(fn(*args))
            except BaseException as exc:  # handed to the caller's thread
                errors.append(exc)

        # A fresh thread each time: one that joined a namespace never leaves it.
        thread = threading.Thread(target=enter_and_run, name=f"netns-{self.ns}", daemon=True)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return result[0]  # type: ignore[no-any-return]

    def call_in_process(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` (module-level, picklable) in a fresh process inside this
        namespace. For anything that starts threads of its own — an event loop: threads
        made by a thread in a namespace are in it too, and trio keeps its worker threads
        in a process-wide cache, so ``call(trio.run, ...)`` left threads behind that later
        tests of this process reused, their 127.0.0.1 being this namespace's."""

        def in_child() -> T:
            spawn = multiprocessing.get_context("spawn")  # forked from this (namespaced) thread
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                return pool.submit(fn, *args).result()

        return self.call(in_child)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def forward(listener: socket.socket, upstream: tuple[str, int]) -> None:
    """Serve ``listener`` (made in some namespace) by connecting each client to
    ``upstream`` from this process's own namespace — e.g. loopback anvil into the
    public namespace. Daemon threads; they end when the listener is closed."""

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
                server = socket.create_connection(upstream)
            except OSError:
                return
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


@dataclass
class Internet:
    """A public namespace and homes behind NAT routers; see the module docstring."""

    prefix: str = field(default_factory=lambda: f"px{secrets.token_hex(3)}")
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[Any]] = field(default_factory=list)
    homes: list[Host] = field(default_factory=list)
    public: Host | None = None

    def __enter__(self) -> Internet:
        atexit.register(self.close)
        try:
            self.public = Host(self._add_ns("pub"), PUBLIC_IP, self)
            self.public.exec("ip", "addr", "add", f"{PUBLIC_IP}/32", "dev", "lo")
            # The public namespace is also the internet's core: it forwards between
            # routers (a new namespace does not), so routers reach each other.
            self.public.exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_ns(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        _sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        _sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        return name

    def _link(self, ns_a: str, if_a: str, ip_a: str, ns_b: str, if_b: str, ip_b: str) -> None:
        _sh("ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b,
            "netns", ns_b)  # fmt: skip
        for ns, name, ip in ((ns_a, if_a, ip_a), (ns_b, if_b, ip_b)):
            _sh("ip", "netns", "exec", ns, "ip", "addr", "add", ip, "dev", name)
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", name, "up")

    def add_home(self) -> Host:
        """A new home network: a NAT router and one host behind it; returns the host."""
        assert self.public is not None, "use Internet as a context manager"
        i = len(self.homes) + 1
        router = self._add_ns(f"r{i}")
        host = self._add_ns(f"h{i}")
        try:
            self._link(self.public.ns, f"home{i}", f"100.64.{i}.1/24",
                       router, "wan", f"100.64.{i}.2/24")  # fmt: skip
            self._link(router, "lan", f"10.{i}.0.1/24", host, "eth0", f"10.{i}.0.2/24")
            _sh("ip", "netns", "exec", host, "ip", "route", "add", "default", "via", f"10.{i}.0.1")
            _sh("ip", "netns", "exec", router, "ip", "route", "add", "default", "via",
                f"100.64.{i}.1")  # fmt: skip
            _sh("ip", "netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            # Masquerade out; from the wan side accept only replies and drop the
            # rest silently, as home routers do (no RST for an unsolicited SYN).
            rules = (
                "table ip nat {\n"
                "  chain post { type nat hook postrouting priority 100; "
                'oifname "wan" masquerade; }\n'
                "}\n"
                "table ip filter {\n"
                "  chain input { type filter hook input priority 0; "
                'iifname "wan" ct state established,related accept; iifname "wan" drop; }\n'
                "  chain forward { type filter hook forward priority 0; "
                'iifname "wan" ct state established,related accept; iifname "wan" drop; }\n'
                "}\n"
            )
            _sh("ip", "netns", "exec", router, "nft", "-f", "-", input_text=rules)
        except BaseException:
            self.close()
            raise
        home = Host(host, f"10.{i}.0.2", self)
        self.homes.append(home)
        return home

    def router_ip(self, home: Host) -> str:
        """The address a home's traffic appears from in the public namespace."""
        return f"100.64.{self.homes.index(home) + 1}.2"

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()
        for name in reversed(self.namespaces):
            # Killing the processes first matters: a namespace with a live
            # process in it outlives `ip netns del` (only its name goes).
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        self.namespaces.clear()
        atexit.unregister(self.close)
