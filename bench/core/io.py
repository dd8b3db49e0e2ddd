"""Atomic file writes: readers see either nothing or the whole file, never a half-written one. And a lock for a
file that is read, compared and written again by processes that may run at once."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not a POSIX system: no advisory locks, each update stays atomic on its own
    fcntl = None  # type: ignore[assignment]


def atomic_write_json(path: Path, payload: Any, *, overwrite: bool = False) -> Path:
    """Write JSON so that readers see either nothing or the whole file. Without `overwrite`, an existing
    file is never replaced: FileExistsError is raised instead."""
    text = json.dumps(payload, indent=1, sort_keys=False, default=str) + "\n"
    return atomic_write_text(path, text, overwrite=overwrite)


def atomic_write_text(path: Path, text: str, *, overwrite: bool = False) -> Path:
    """Temp file in the same folder, fsync, then a hard link to the final name (which refuses to replace an
    existing file) or, with `overwrite`, a rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp_name, 0o666 & ~current_umask())  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp_name, path)
        else:
            os.link(tmp_name, path)  # atomic, and refuses to replace an existing file
            os.unlink(tmp_name)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path


@contextmanager
def updating(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock for `path` (on `path` + ".lock" beside it, which stays) while a
    read-compare-write of it runs, so that a concurrent update waits instead of overwriting a better value.
    Best effort: where no lock can be had (a lock file another user created, a read-only folder, a file system
    without locks) the update runs unlocked, as it did before locking, each write still atomic."""
    fd = _lock_descriptor(Path(path))
    try:
        if fd is not None and fcntl is not None:
            with contextlib.suppress(OSError):  # ENOLCK on some network file systems
                fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor closes
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _lock_descriptor(path: Path) -> int | None:
    lock = path.with_name(path.name + ".lock")
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)  # the umask applies, as to any new file
    with contextlib.suppress(OSError):
        return os.open(lock, os.O_RDONLY)  # flock needs no write access to the file
    return None


def current_umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def why_not_found(path: Path, what: str, *, folder: bool = False) -> str:
    """Why `path` cannot be read as the `what` asked for ("scenario file", "checkpoint folder"): it is absent,
    or it exists as the wrong kind of thing (a message saying "no such" for /dev/null would mislead)."""
    if not path.exists():
        return f"no such {what}"
    if folder:
        return f"a file, not a {what}"
    return f"a folder, not a {what}" if path.is_dir() else f"not a regular file, so not a {what}"
