import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.hardware import environment
from bench.hardware.environment import collect_environment, cpu_has_native_bf16, environment_fingerprint, machine_slug

SAFE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def test_collect_environment_keys_and_cpuinfo_read_once() -> None:
    collect_environment()  # first call parses /proc/cpuinfo
    misses = environment._cpuinfo.cache_info().misses
    env = collect_environment()
    assert environment._cpuinfo.cache_info().misses == misses  # every later call reuses the parsed file
    for key in (
        "hostname", "os", "platform", "python_version", "cpu_model", "cpu_flags", "cpu_physical_cores",
        "cpu_logical_cores", "cpu_usable_cores", "ram_total_bytes", "torch_version", "torch_threads",
        "torch_interop_threads", "transformers_version", "numpy_version", "recbench_version", "git_commit",
        "git_dirty", "cuda", "machine_slug", "fingerprint",
    ):  # fmt: skip
        assert key in env, key
    assert set(env["cpu_flags"]) == {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "sve", "asimd"}
    assert env["machine_slug"].endswith(env["fingerprint"]["digest"]) or "RECBENCH_MACHINE" in os.environ
    assert all(isinstance(v, bool) for v in env["cpu_flags"].values())
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["cuda"]["available"] == torch.cuda.is_available()
    assert env["cuda"]["device_count"] == len(env["cuda"]["devices"])
    json.dumps(env)  # results files store it as JSON


def test_native_bf16_follows_flags() -> None:
    flags = environment.cpu_flags()
    assert cpu_has_native_bf16() == (flags["avx512_bf16"] or flags["amx_bf16"])


def test_machine_slug_is_filesystem_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECBENCH_MACHINE", raising=False)
    assert SAFE.match(machine_slug())
    env = {
        "cpu_model": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
        "cpu_flags": {"avx2": True, "avx512f": True, "avx512_bf16": True, "amx_bf16": True},
        "cpu_logical_cores": 8,
        "ram_total_bytes": 64 * 2**30,
        "torch_version": "2.13.0+cu128",
        "cuda": {"devices": [{"name": "NVIDIA H100 80GB HBM3"}, {"name": "NVIDIA H100 80GB HBM3"}]},
    }
    slug = machine_slug(environment_fingerprint(env))
    assert slug.startswith("intel-xeon-platinum-8481c-8c-amx-2xnvidia-h100-80gb-hbm3-") and SAFE.match(slug)
    amd = {"cpu_model": "AMD EPYC 7B13 64-Core Processor", "cpu_flags": {"avx2": True}, "cpu_logical_cores": 2,
           "ram_total_bytes": 24 * 2**30, "torch_version": "2.13.0+cpu", "cuda": {"devices": []}}  # fmt: skip
    avx2 = environment_fingerprint(amd)
    assert machine_slug(avx2).startswith("amd-epyc-7b13-2c-avx2-")
    # The same vendor string on another ISA is another machine; another torch build is the same machine.
    avx512 = environment_fingerprint({**amd, "cpu_flags": {"avx2": True, "avx512f": True, "avx512_bf16": True}})
    assert avx512.isa == "avx512-bf16" and machine_slug(avx512) != machine_slug(avx2)
    newer_torch = environment_fingerprint({**amd, "torch_version": "2.14.1+cpu"})
    assert machine_slug(newer_torch) == machine_slug(avx2) and newer_torch.differences(avx2) == [
        "torch 2.14.1+cpu vs 2.13.0+cpu"
    ]


def cgroup_with(monkeypatch: pytest.MonkeyPatch, root: Path, files: dict[str, str], own: str = "/") -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "proc-self-cgroup").write_text(f"12:memory:/x\n0::{own}\n")
    monkeypatch.setattr(environment, "CGROUP_ROOT", root)
    monkeypatch.setattr(environment, "PROC_SELF_CGROUP", root / "proc-self-cgroup")


@pytest.mark.parametrize(
    ("files", "own", "quota"),
    [
        ({"cpu.max": "max 100000\n"}, "/", None),  # cgroup v2, no limit
        ({"cpu.max": "150000 100000\n"}, "/", 1.5),  # docker --cpus=1.5, inside the container's namespace
        ({"kubepods/pod1/cpu.max": "400000 100000\n", "cpu.max": "max 100000"}, "/kubepods/pod1", 4.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "/", None),  # cgroup v1
        ({"cpu,cpuacct/cpu.cfs_quota_us": "200000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, "/", 2.0),
        ({"cpu.max": "garbage"}, "/", None),
        ({}, "/", None),  # no cgroup files (macOS, or not mounted)
        # The limit is on a cgroup above this process's: a pod, or a container whose processes moved to a child.
        (
            {"kubepods/pod1/c1/cpu.max": "max 100000", "kubepods/pod1/cpu.max": "200000 100000"},
            "/kubepods/pod1/c1",
            2.0,
        ),
        ({"init.scope/cpu.max": "max 100000", "cpu.max": "300000 100000"}, "/init.scope", 3.0),
        ({"a/cpu.max": "800000 100000", "cpu.max": "100000 100000"}, "/a", 1.0),  # the tightest binds
        ({"cpu.max": "200000 100000"}, "/../../etc", 2.0),  # `..` never leaves the cgroup folder
    ],
)
def test_a_cgroup_cpu_quota_is_read_in_cores(monkeypatch, tmp_path, files, own, quota) -> None:
    cgroup_with(monkeypatch, tmp_path, files, own)
    assert environment.cgroup_cpu_quota() == quota


def test_a_cgroup_v1_quota_is_read_at_the_process_own_path(monkeypatch, tmp_path) -> None:
    files = {"cpu,cpuacct/system.slice/x.service/cpu.cfs_quota_us": "150000",
             "cpu,cpuacct/system.slice/x.service/cpu.cfs_period_us": "100000"}  # fmt: skip
    cgroup_with(monkeypatch, tmp_path, files)
    (tmp_path / "proc-self-cgroup").write_text("4:cpu,cpuacct:/system.slice/x.service\n0::/\n")
    assert environment.cgroup_cpu_quota() == 1.5


def test_other_processes_cpu_counts_only_the_cores_this_process_may_run_on(monkeypatch) -> None:
    if not hasattr(os, "sched_getaffinity") or environment.host_cores() < 2:
        pytest.skip("needs an affinity mask and two cores")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    with environment.OtherProcessesCpu(min_window_s=0.02) as others:
        pass
    assert others.cores == 1 and others.share is not None and 0.0 <= others.share <= 1.0


def test_the_fingerprint_counts_the_cores_a_container_may_use(monkeypatch, tmp_path) -> None:
    cgroup_with(monkeypatch, tmp_path, {"cpu.max": "50000 100000"})  # half a core: rounded up to one
    assert environment.usable_cores() == 1
    assert environment.this_machine().logical_cores == 1
    env = collect_environment()
    assert env["cpu_usable_cores"] == env["fingerprint"]["logical_cores"] == 1
    # A result written before usable cores were recorded keeps the key it was stored under.
    older = {key: value for key, value in env.items() if key != "cpu_usable_cores"}
    assert environment_fingerprint(older).logical_cores == env["cpu_logical_cores"]


def test_machine_slug_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECBENCH_MACHINE", "my-box")
    assert machine_slug() == "my-box"
    monkeypatch.setenv("RECBENCH_MACHINE", "Lab Box/../#3")
    assert SAFE.match(machine_slug())


def test_git_outside_a_repo_is_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(environment, "REPO_DIR", tmp_path)
    env = collect_environment()
    assert env["git_commit"] is None and env["git_dirty"] is None


def test_git_missing_does_not_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_git(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(environment.subprocess, "run", no_git)
    assert environment.git_state() == {"git_commit": None, "git_dirty": None}


# Two 16 MiB blocks touched and freed, five times over: with glibc's defaults the 32 MiB freed at the heap top is
# more than its (moving) trim threshold, so it goes back to the OS and is faulted in again each round.
FAULTS_PER_ROUND = """
import ctypes, resource, sys
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
if sys.argv[1] == "keep":
    from bench.hardware.allocator import keep_freed_memory
    keep_freed_memory()
def round_faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [libc.malloc(ctypes.c_size_t(16 << 20)) for _ in range(2)]
    for block in blocks:
        ctypes.memset(block, 1, 16 << 20)
    for block in blocks:
        libc.free(ctypes.c_void_p(block))
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
round_faults()
print(sum(round_faults() for _ in range(5)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings apply on Linux only")
def test_freed_memory_is_kept_for_reuse_and_recorded() -> None:
    from bench.hardware.allocator import allocator_settings, keep_freed_memory, release_freed_memory

    # Applied to this pytest process for good, as any in-process run in the suite applies it.
    applied = keep_freed_memory()
    if applied is None:
        pytest.skip("the C library is not glibc")
    assert allocator_settings() == applied and "M_TRIM_THRESHOLD" in applied
    assert collect_environment()["allocator"] == applied
    release_freed_memory()

    def faults(mode: str) -> int:
        env = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")}
        done = subprocess.run([sys.executable, "-c", FAULTS_PER_ROUND, mode], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parents[1], env=env)  # fmt: skip
        return int(done.stdout)

    default, kept = faults("default"), faults("keep")
    assert default > 5 * (16 << 20) // 4096  # the defaults fault the blocks back in every round
    assert kept < default / 10, (default, kept)


def test_other_processes_cpu_counts_a_spinning_process_and_pads_a_short_block() -> None:
    cores = os.cpu_count() or 1
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # started and spinning
        with environment.OtherProcessesCpu(min_window_s=0.5) as busy:
            pass
    finally:
        spinner.kill()
        spinner.wait()
    # The spinner alone keeps most of a core busy; other load on the machine only adds to it.
    assert busy.share * cores > 0.5
    started = time.perf_counter()
    with environment.OtherProcessesCpu(min_window_s=0.3) as padded:
        pass
    assert time.perf_counter() - started >= 0.3  # an empty block is padded to a window CPU times can resolve
    assert padded.share is not None and 0.0 <= padded.share <= 1.0
    started = time.perf_counter()
    with environment.OtherProcessesCpu(min_window_s=0.3, pad=False) as unpadded:
        pass
    assert time.perf_counter() - started < 0.3 and unpadded.share is None  # too short to tell, and not waited for


def test_recbench_machine_says_when_the_process_may_use_fewer_cores_than_the_host(monkeypatch, capsys) -> None:
    from bench.cli import main
    from bench.hardware import identify

    monkeypatch.setattr(identify, "host_cores", lambda: 64)
    assert main(["machine"]) == 0
    out = capsys.readouterr().out
    usable = environment.usable_cores()
    assert f"cores:        {usable} of the host's 64" in out and f"{usable} logical core" in out


def test_periods_throttled_by_the_cpu_quota_during_a_block_are_counted_and_warned(monkeypatch, tmp_path) -> None:
    from bench.measurement.prepare import busy_machine_warnings

    cgroup_with(monkeypatch, tmp_path, {"pod/cpu.stat": "nr_periods 100\nnr_throttled 5\nthrottled_usec 9\n",
                                        "cpu.stat": "nr_periods 100\nnr_throttled 0\n"}, own="/pod")  # fmt: skip
    with environment.OtherProcessesCpu(min_window_s=0.0) as others:
        (tmp_path / "pod" / "cpu.stat").write_text("nr_periods 140\nnr_throttled 15\nthrottled_usec 99\n")
        (tmp_path / "cpu.stat").write_text("nr_periods 140\nnr_throttled 2\n")
    assert others.throttled_periods == (10, 40)  # the cgroup throttled most: 10 of its 40 periods
    [warning] = [w for w in busy_machine_warnings(others, during="the timed batches") if "quota" in w.message]
    assert "in 10 of 40 periods (25%" in warning.message and warning.kind == "busy_machine"
    # No quota, or nothing throttled: no figure and no warning.
    with environment.OtherProcessesCpu(min_window_s=0.0) as quiet:
        pass
    assert quiet.throttled_periods == (0, 0)
    assert not [w for w in busy_machine_warnings(quiet) if "quota" in w.message]
