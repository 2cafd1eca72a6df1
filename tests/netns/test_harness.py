"""The harness models home routers: out through NAT, never in, never across homes."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.netns.harness import PUBLIC_IP, Internet


def _listen(ip: str) -> socket.socket:
    return socket.create_server((ip, 0))


def _dial(ip: str, port: int) -> socket.socket:
    return socket.create_connection((ip, port), timeout=3)


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
        with pytest.raises(OSError):
            dialer.call(_dial, target, port)
    server.close()


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
