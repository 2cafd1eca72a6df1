"""Node ids, libp2p peer-id compatibility and payment-address bindings."""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import NodeId, NodeKey, PaymentBinding
from protocol.base58 import b58decode, b58encode
from protocol.errors import BadBinding, BadSignature


@given(st.binary(min_size=32, max_size=32))
def test_node_id_text_round_trips_and_looks_like_a_peer_id(seed: bytes) -> None:
    node_id = NodeKey(seed).node_id
    assert node_id.text.startswith("12D3KooW")
    assert NodeId.from_text(node_id.text) == node_id


@given(st.binary(max_size=64))
def test_base58_round_trips(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


def test_node_id_text_is_the_libp2p_peer_id() -> None:
    keys = pytest.importorskip("libp2p.crypto.ed25519")
    peer = pytest.importorskip("libp2p.peer.id")
    key = NodeKey(bytes(range(32)))
    pair = keys.create_new_key_pair(key.seed)
    assert str(peer.ID.from_pubkey(pair.public_key)) == key.node_id.text


def test_bad_peer_id_text_is_explained() -> None:
    with pytest.raises(ValueError, match="not the peer id"):
        NodeId.from_text("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")  # an RSA-style id
    with pytest.raises(ValueError, match="base58"):
        NodeId.from_text("12D3KooW0OIl")


def test_key_repr_never_shows_the_secret() -> None:
    key = NodeKey(b"s" * 32)
    assert key.seed.hex() not in repr(key) and (b"s" * 32).hex() not in repr(key)
    assert key.node_id.text in repr(key)


def test_signatures_verify_only_for_their_message() -> None:
    key = NodeKey.generate()
    sig = key.sign(b"hello")
    key.node_id.verify(b"hello", sig)
    with pytest.raises(BadSignature):
        key.node_id.verify(b"hellO", sig)


def test_payment_binding_verifies_both_ways() -> None:
    key, eth_key = NodeKey.generate(), os.urandom(32)
    binding = PaymentBinding.create(key, eth_key)
    binding.verify()
    other = PaymentBinding.create(NodeKey.generate(), os.urandom(32))
    # Claiming someone else's address, or someone else's node, fails.
    for forged in (
        dataclasses.replace(binding, address=other.address),
        dataclasses.replace(binding, node=other.node, node_signature=other.node_signature),
        dataclasses.replace(binding, address_signature=other.address_signature),
        dataclasses.replace(binding, address_signature=b"\x00" * 65),
    ):
        with pytest.raises(BadBinding):
            forged.verify()
