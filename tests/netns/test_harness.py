"""The harness models home routers: out through NAT, never in, never across homes."""

from __future__ import annotations

import socket
import subprocess
import threading

import pytest

from tests.netns.harness import PUBLIC_IP, Internet


def _listen(ip: str) -> socket.socket:
    return socket.create_server((ip, 0))


def _dial(ip: str, port: int, timeout_s: float = 3.0) -> socket.socket:
    return socket.create_connection((ip, port), timeout=timeout_s)


def test_home_reaches_public_through_its_router(internet: Internet) -> None:
    assert internet.public is not None
    home = internet.add_home()
    server = internet.public.call(_listen, PUBLIC_IP)
    port = server.getsockname()[1]
    client = home.call(_dial, PUBLIC_IP, port)
    accepted, (seen_ip, _) = server.accept()
    assert seen_ip == internet.router_ip(home)  # masqueraded: the router, not 10.1.0.2
    client.sendall(b"ping")
    assert accepted.recv(4) == b"ping"
    for s in (client, accepted, server):
        s.close()


def test_nobody_dials_into_a_home(internet: Internet) -> None:
    assert internet.public is not None
    one, two = internet.add_home(), internet.add_home()
    server = two.call(_listen, "0.0.0.0")
    port = server.getsockname()[1]
    for dialer, target in ((internet.public, two.ip), (one, two.ip),
                           (one, internet.router_ip(two))):  # fmt: skip
        with pytest.raises(OSError):  # no route, or dropped without an answer (1 s)
            dialer.call(_dial, target, port, 1.0)
    server.close()


def test_routers_reach_each_other_and_simultaneous_open_punches_through(
    internet: Internet,
) -> None:
    """What DCUtR relies on: both hosts dial each other's router from their own port."""
    one, two = internet.add_home(), internet.add_home()

    def bound(port: int) -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.settimeout(5)
        return s

    a, b = one.call(bound, 5001), two.call(bound, 5002)
    errors: list[BaseException] = []

    def connect(s: socket.socket, addr: tuple[str, int]) -> None:
        try:
            s.connect(addr)
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=connect, args=(a, (internet.router_ip(two), 5002))),
               threading.Thread(target=connect, args=(b, (internet.router_ip(one), 5001)))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    a.sendall(b"punched")
    assert b.recv(7) == b"punched"
    a.close()
    b.close()


def test_close_removes_namespaces_and_processes(netns_ok: None) -> None:
    with Internet() as net:
        home = net.add_home()
        process = home.popen(["sleep", "600"])
        names = list(net.namespaces)
    assert process.poll() is not None
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [n for n in names if n in listed]


def test_close_runs_when_the_body_fails(netns_ok: None) -> None:
    net = Internet()
    with pytest.raises(RuntimeError), net:
        net.add_home()
        raise RuntimeError("test body failed")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert net.prefix not in listed
