"""Secret key files: written atomically with mode 0600, refused when exposed.

A key file holds one line: ``pictor-ed25519-seed-v1:<64 hex chars>`` (or
``pictor-secp256k1-v1:`` for a payment key). The prefix makes a file's purpose
obvious to a human and stops a payment key from being loaded as a node key.

Writing goes to a temporary file in the same directory, created with 0600
from the start (never a window where the secret is world-readable), fsynced,
then renamed over the target, then the directory is fsynced: a crash leaves
either the old file or the new one, never half of one.

Reading refuses a file that group or others can read or write, the same rule
OpenSSH applies to private keys, with a message that says how to fix it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from protocol import NodeKey

NODE_KEY_PREFIX = "pictor-ed25519-seed-v1:"
PAYMENT_KEY_PREFIX = "pictor-secp256k1-v1:"


class KeyFileError(Exception):
    """A key file is missing, malformed or unsafe; the message says what to do."""


class KeyFilePermissionError(KeyFileError):
    pass


def write_secret_file(path: Path, text: str) -> None:
    """Atomically write ``text`` to ``path`` with mode 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_secret_file(path: Path) -> str:
    """Read a secret file, refusing one that others could read or change."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"{path} does not exist; create it with `pictor init`") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFilePermissionError(
            f"{path} is readable or writable by other users (mode {stat.filemode(mode)}); "
            f"a secret key must be private. Fix it with `chmod 600 {path}` — and if other "
            "people could have read it, create a new key instead."
        )
    return path.read_text(encoding="ascii").strip()


def write_key_file(path: Path, key: NodeKey) -> None:
    write_secret_file(path, f"{NODE_KEY_PREFIX}{key.seed.hex()}\n")


def read_key_file(path: Path) -> NodeKey:
    text = read_secret_file(path)
    return NodeKey(_parse(path, text, NODE_KEY_PREFIX))


def write_payment_key_file(path: Path, private_key: bytes) -> None:
    write_secret_file(path, f"{PAYMENT_KEY_PREFIX}{private_key.hex()}\n")


def read_payment_key_file(path: Path) -> bytes:
    return _parse(path, read_secret_file(path), PAYMENT_KEY_PREFIX)


def _parse(path: Path, text: str, prefix: str) -> bytes:
    if not text.startswith(prefix):
        raise KeyFileError(f"{path} is not a {prefix.rstrip(':')} key file")
    try:
        raw = bytes.fromhex(text[len(prefix) :])
    except ValueError:
        raise KeyFileError(f"{path} is corrupt: the key is not hex") from None
    if len(raw) != 32:
        raise KeyFileError(f"{path} is corrupt: expected 32 bytes of key, found {len(raw)}")
    return raw
