"""Node identities and the binding of a payment address to a node key.

A node is its Ed25519 key. ``NodeId`` is the 32-byte public key; its text form
is exactly the libp2p peer id of that key (``12D3KooW...``): base58btc of the
identity multihash of the protobuf-encoded ``PublicKey{Type: Ed25519, Data}``.
So the signer of an envelope and the libp2p peer that delivered it can be
compared directly.

Payments use a separate secp256k1 key (an EVM address). ``PaymentBinding``
ties the two together with signatures in both directions, so nobody can claim
another node's address or another address's node:

* the node key signs ``BIND_ADDRESS_DOMAIN || address`` (Ed25519);
* the address signs the EIP-191 text ``"Pictor: payment address <0x..> belongs
  to node <peer id>"`` (``personal_sign``, so any wallet can produce it).

Anyone holding the binding can check both with :meth:`PaymentBinding.verify`.
Key *files* are I/O and live in ``node/keyfile.py``; this module only turns
keys into bytes and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_hash.auto import keccak
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from protocol.base58 import b58decode, b58encode
from protocol.codec import Bytes20, Bytes32, Bytes64, Bytes65
from protocol.errors import BadBinding, BadSignature, LocalProtocolError

# protobuf PublicKey{Type=Ed25519(1), Data=<32 bytes>} prefix, then the
# identity multihash (code 0x00, length 36) that libp2p uses for small keys.
_PROTOBUF_ED25519_PREFIX = bytes([0x08, 0x01, 0x12, 0x20])
_IDENTITY_MULTIHASH_PREFIX = bytes([0x00, 0x24])
_PEER_ID_PREFIX = _IDENTITY_MULTIHASH_PREFIX + _PROTOBUF_ED25519_PREFIX

BIND_ADDRESS_DOMAIN = b"pictor/bind-payment-address/v1\x00"


@dataclass(frozen=True, order=True)
class NodeId:
    """An Ed25519 public key; ``str()`` gives the libp2p peer id."""

    raw: bytes

    def __post_init__(self) -> None:
        if type(self.raw) is not bytes or len(self.raw) != 32:
            raise ValueError("a NodeId is exactly 32 bytes of Ed25519 public key")

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"NodeId({self.text})"

    @cached_property
    def text(self) -> str:
        return b58encode(_PEER_ID_PREFIX + self.raw)

    @classmethod
    def from_text(cls, text: str) -> NodeId:
        """Parse a libp2p Ed25519 peer id; ``ValueError`` says what is wrong."""
        raw = b58decode(text)
        if len(raw) != len(_PEER_ID_PREFIX) + 32 or not raw.startswith(_PEER_ID_PREFIX):
            raise ValueError(f"{text!r:.60} is not the peer id of an Ed25519 key")
        return cls(raw[len(_PEER_ID_PREFIX) :])

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise ``BadSignature`` unless ``signature`` is this key's over ``message``."""
        try:
            VerifyKey(self.raw).verify(message, signature)
        except (BadSignatureError, ValueError, TypeError) as exc:
            raise BadSignature(f"signature by {self.text} does not verify") from exc


class NodeKey:
    """An Ed25519 signing key. Never printed: ``repr`` shows the public id only."""

    __slots__ = ("_signing", "node_id")

    def __init__(self, seed: bytes) -> None:
        if type(seed) is not bytes or len(seed) != 32:
            raise LocalProtocolError("an Ed25519 seed is exactly 32 bytes")
        self._signing = SigningKey(seed)
        self.node_id = NodeId(bytes(self._signing.verify_key))

    @classmethod
    def generate(cls) -> NodeKey:
        return cls(bytes(SigningKey.generate()))

    @property
    def seed(self) -> bytes:
        """The 32-byte private seed (what libp2p's Ed25519 key is built from)."""
        return bytes(self._signing)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._signing.sign(message).signature)

    def __repr__(self) -> str:
        return f"NodeKey(node_id={self.node_id.text})"


def address_text(address: bytes) -> str:
    """EIP-55 checksummed text of a 20-byte address."""
    return _checksum(address)


def _checksum(address: bytes) -> str:
    # EIP-55 by hand: eth_utils' re-exports are untyped and keccak is all we need.
    hex_addr = address.hex()
    digest = keccak(hex_addr.encode()).hex()
    return "0x" + "".join(
        c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hex_addr)
    )


def _binding_text(node_id: NodeId, address: bytes) -> str:
    return f"Pictor: payment address {address_text(address)} belongs to node {node_id.text}"


@dataclass(frozen=True)
class PaymentBinding:
    """A node key and an EVM address, each signing for the other."""

    node: Bytes32
    address: Bytes20
    node_signature: Bytes64
    address_signature: Bytes65

    @classmethod
    def create(cls, key: NodeKey, eth_private_key: bytes) -> PaymentBinding:
        account = Account.from_key(eth_private_key)
        address = bytes.fromhex(account.address[2:])
        node_sig = key.sign(BIND_ADDRESS_DOMAIN + address)
        signed = account.sign_message(encode_defunct(text=_binding_text(key.node_id, address)))
        return cls(key.node_id.raw, address, node_sig, bytes(signed.signature))

    def verify(self) -> None:
        """Raise ``BadBinding`` unless both signatures hold."""
        node_id = NodeId(self.node)
        try:
            node_id.verify(BIND_ADDRESS_DOMAIN + self.address, self.node_signature)
        except BadSignature as exc:
            raise BadBinding("the node key did not sign this payment address") from exc
        message = encode_defunct(text=_binding_text(node_id, self.address))
        try:
            recovered = Account.recover_message(message, signature=self.address_signature)
        except Exception as exc:  # eth-keys raises several types for junk signatures
            raise BadBinding(f"unreadable address signature: {exc}") from None
        if recovered.lower() != "0x" + self.address.hex():
            raise BadBinding("the payment address did not sign this node id")
