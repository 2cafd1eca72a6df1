"""Key files: atomic 0600 writes, exposed files refused with an explanation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from node.keyfile import (
    KeyFileError,
    KeyFilePermissionError,
    read_key_file,
    read_payment_key_file,
    write_key_file,
    write_payment_key_file,
)
from protocol import NodeKey


def test_written_with_0600_and_read_back(tmp_path: Path) -> None:
    key = NodeKey.generate()
    path = tmp_path / "sub" / "node.key"
    write_key_file(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path).node_id == key.node_id
    assert [p.name for p in path.parent.iterdir()] == ["node.key"]  # no temp file left


def test_overwrite_is_atomic_replacement(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    write_key_file(path, NodeKey(b"a" * 32))
    write_key_file(path, NodeKey(b"b" * 32))
    assert read_key_file(path).seed == b"b" * 32


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_exposed_key_file_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "node.key"
    write_key_file(path, NodeKey.generate())
    os.chmod(path, mode)
    with pytest.raises(KeyFilePermissionError, match="chmod 600"):
        read_key_file(path)


def test_missing_corrupt_and_wrong_kind(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="pictor init"):
        read_key_file(tmp_path / "absent.key")
    pay = tmp_path / "payment.key"
    write_payment_key_file(pay, b"p" * 32)
    assert read_payment_key_file(pay) == b"p" * 32
    with pytest.raises(KeyFileError, match="not a pictor-ed25519"):
        read_key_file(pay)
    bad = tmp_path / "bad.key"
    bad.write_text("pictor-ed25519-seed-v1:zz\n")
    bad.chmod(0o600)
    with pytest.raises(KeyFileError, match="corrupt"):
        read_key_file(bad)


def test_secret_never_appears_in_error_messages(tmp_path: Path) -> None:
    key = NodeKey.generate()
    path = tmp_path / "node.key"
    write_key_file(path, key)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFilePermissionError) as info:
        read_key_file(path)
    assert key.seed.hex() not in str(info.value)
