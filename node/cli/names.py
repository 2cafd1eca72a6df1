"""One display name per node, everywhere: the tail of its libp2p peer id.

Every Ed25519 peer id starts ``12D3KooW``, so the tail is what tells nodes
apart. Job records carry node ids as 64 hex digits, peers and adverts as peer
ids; both print the same ``…`` + last 8 characters of the peer id, which the
full id in ``pictor peers`` ends with. The demo prefixes the role
(``worker1 …3Xk9aBcD``).
"""

from __future__ import annotations

from protocol.identity import NodeId

TAIL = 8


def peer_text(node: str) -> str:
    """The libp2p peer id of a node given as a peer id or as 64 hex digits of its key."""
    if len(node) == 64:
        try:
            return NodeId(bytes.fromhex(node)).text
        except ValueError:
            return node
    return node


def short_peer(node: str) -> str:
    """``…`` + the last characters of the node's peer id (see the module docstring)."""
    text = peer_text(node)
    return text if len(text) <= TAIL + 1 else "…" + text[-TAIL:]


def named(role_name: str, node: str) -> str:
    """The demo's name: the role and number, then the short peer id."""
    return f"{role_name} {short_peer(node)}"
