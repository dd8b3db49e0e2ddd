"""Atomic file writes: readers see either nothing or the whole file, never a half-written one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


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
