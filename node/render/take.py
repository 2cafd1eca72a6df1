"""Taking a sandboxed child's files out of its work directory without following its links.

The child owns its work directory, so every name in it may be a symlink or a
hard link it planted; these two calls are the only way the node reads it.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path


class SandboxError(Exception):
    """The sandboxed process failed, timed out or could not start, or its file was not
    taken; the message says which. (Raised here and by node.render.sandbox.)"""


def take_file(workdir: Path, relative: str, dest: Path) -> Path:
    """Copy a file the sandboxed child produced out of its work directory, safely.

    The child owns its work directory: any name in it may be a symlink to a
    host file (``out -> /root/.pictor``), which ``is_file``/``shutil.move`` run
    by the node would follow and carry off. So every component is opened with
    ``O_NOFOLLOW`` relative to the one before, the file must be a regular file
    no larger than the child may write, and its bytes are copied (never renamed:
    a rename can take a hard-linked host file along). Raises ``SandboxError``.
    """
    parts = Path(relative).parts
    if not parts or any(p in ("..", "/", "") for p in parts):
        raise SandboxError(f"{relative!r}: not a path inside the work directory")
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fds = [os.open(workdir, flags | os.O_DIRECTORY)]
    try:
        for part in parts[:-1]:
            fds.append(os.open(part, flags | os.O_DIRECTORY, dir_fd=fds[-1]))
        try:
            fd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fds[-1])
        except OSError as exc:
            raise SandboxError(f"{relative}: not produced as a plain file ({exc.strerror})") from None
        fds.append(fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SandboxError(f"{relative}: not a regular file")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(fd, "rb", closefd=False) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
        return dest
    except NotADirectoryError:
        raise SandboxError(f"{relative}: a folder on the way is not a plain folder") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SandboxError(f"{relative}: a symlink on the way (refused)") from None
        raise
    finally:
        for fd in reversed(fds):
            os.close(fd)


def produced_names(workdir: Path, folder: str) -> list[str]:
    """Names of the plain files the child left in ``workdir/folder`` (no symlinks)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(workdir / folder, flags)
    except OSError as exc:
        raise SandboxError(f"{folder}: not a plain folder ({exc.strerror})") from None
    try:
        with os.scandir(fd) as entries:
            return sorted(e.name for e in entries if e.is_file(follow_symlinks=False))
    finally:
        os.close(fd)


