"""Hostile programs in the sandbox: each must be contained, scored as a failure, and leave the host
untouched. Every sample of a mode runs concurrently (one batch per mode) to keep the file fast.

Modes:
- default:  the strongest isolation this machine offers plus the Python audit-hook guard;
- os_only:  the guard switched off, so the OS layers (namespaces, uid, rlimits) alone must hold
            (skipped where namespaces are unavailable);
- fallback: no namespaces (`isolation="process"`), guard on: the documented weaker mode.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.eval.code import run_program
from shared.eval.sandbox import SandboxConfig, isolation_used, probe_isolation, run
from shared.experiment import start_run

SLOW_TIMEOUT = 1.5   # samples that should be stopped by the timeout
FAST_TIMEOUT = 8.0   # samples that should end by themselves (generous: the CPU is shared)
MODES = {
    "default": SandboxConfig(),
    "os_only": SandboxConfig(python_guard=False),
    "fallback": SandboxConfig(isolation="process"),
}


def _proc_count() -> int:
    return sum(p.isdigit() for p in os.listdir("/proc"))


def _procs_matching(needle: bytes) -> list[int]:
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        for name in ("cmdline", "comm"):
            try:
                if needle in Path(f"/proc/{p}/{name}").read_bytes():
                    found.append(int(p))
            except OSError:
                pass
    return found


def _samples(env: dict) -> dict[str, tuple[str, float]]:
    d = lambda s: textwrap.dedent(s).format(**env)  # noqa: E731
    return {
        "ok": ("assert sum([1, 2]) == 3\nprint('fine')\n", FAST_TIMEOUT),
        "assert_fails": ("assert 1 == 2, 'wrong'\n", FAST_TIMEOUT),
        "infinite_loop": ("while True:\n    pass\n", SLOW_TIMEOUT),
        "fork_bomb": (d("""
            import os
            try:
                import ctypes
                ctypes.CDLL(None).prctl(15, b"{bomb}", 0, 0, 0)   # PR_SET_NAME: a marker in /proc/*/comm
            except Exception:
                pass
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
            """), SLOW_TIMEOUT),
        "allocate_10gb": ("x = bytearray(10 * 1024 ** 3)\nprint(len(x))\n", FAST_TIMEOUT),
        "write_outside": (d("""
            import sys
            written = 0
            for path in [{write_private!r}, {write_world!r}, {write_rootonly!r}]:
                try:
                    with open(path, "w") as f:
                        f.write("pwned")
                    written += 1
                except OSError as e:
                    print(type(e).__name__, e)
            sys.exit(0 if written else 1)
            """), FAST_TIMEOUT),
        "socket": (d("""
            import socket
            s = socket.create_connection(("127.0.0.1", {port}), timeout=1)
            s.sendall(b"exfiltrate")
            """), FAST_TIMEOUT),
        "delete_files": (d("""
            import os, shutil
            for path in [{sentinel!r}, {sentinel_rootonly!r}]:
                try:
                    os.remove(path)
                except OSError as e:
                    print(type(e).__name__, e)
            shutil.rmtree({sentinel_dir!r})
            """), FAST_TIMEOUT),
        "setsid_daemon": (d("""
            import os, sys, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", "{daemon}"])
                os._exit(0)
            time.sleep(0.5)
            sys.exit(3)
            """), FAST_TIMEOUT),
    }


@pytest.fixture(scope="module", params=list(MODES))
def hostile(request, tmp_path_factory):
    mode = request.param
    if mode == "os_only" and not probe_isolation().namespaces:
        pytest.skip(f"namespaces unavailable ({probe_isolation().detail}): OS-only layers not tested")
    root = tmp_path_factory.mktemp(f"sandbox_{mode}")
    world = Path(tempfile.mkdtemp(prefix="sbx_world_writable_"))
    os.chmod(world, 0o777)
    # a root-only folder outside the private mounts: visible in the sandbox, only permissions protect it
    base = next((d for d in ("/var/lib", "/opt", "/srv") if os.access(d, os.W_OK)), None)
    rootonly = Path(tempfile.mkdtemp(prefix="sbx_rootonly_", dir=base))
    (rootonly / "sentinel.txt").write_text("keep me")
    sentinel = root / "sentinel.txt"
    sentinel.write_text("keep me")
    (root / "sentinel_dir").mkdir()
    (root / "sentinel_dir" / "inner.txt").write_text("keep me too")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.3)
    token = os.urandom(4).hex()
    env = {"write_private": str(root / "evil.txt"), "write_world": str(world / "evil.txt"),
           "write_rootonly": str(rootonly / "evil.txt"), "sentinel_rootonly": str(rootonly / "sentinel.txt"),
           "port": listener.getsockname()[1], "sentinel": str(sentinel),
           "sentinel_dir": str(root / "sentinel_dir"), "bomb": f"fb{token}", "daemon": f"daemon_{token}"}
    samples = _samples(env)
    procs_before = _proc_count()
    start = time.monotonic()
    names = list(samples)
    # each sample has its own timeout, so run them through run_program in a pool
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {n: pool.submit(run_program, samples[n][0], samples[n][1], MODES[mode]) for n in names}
        results = {n: f.result() for n, f in futures.items()}
    wall = time.monotonic() - start
    try:
        conn, _ = listener.accept()
        conn.close()
        connected = True
    except (TimeoutError, BlockingIOError):
        connected = False
    listener.close()
    yield {"mode": mode, "results": results, "env": env, "root": root, "world": world, "wall": wall,
           "procs_before": procs_before, "connected": connected}
    for folder in (world, rootonly):
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


def test_correct_program_passes(hostile):
    r = hostile["results"]["ok"]
    assert r.passed, r
    assert r.exit_code == 0 and not r.timed_out and r.reason == "passed"
    assert "fine" in r.stdout_tail


def test_failing_assert_fails(hostile):
    r = hostile["results"]["assert_fails"]
    assert not r.passed and r.exit_code == 1 and not r.timed_out
    assert "AssertionError" in r.stderr_tail and "AssertionError" in r.reason


def test_infinite_loop_times_out(hostile):
    r = hostile["results"]["infinite_loop"]
    assert not r.passed and r.timed_out and r.exit_code is None and r.reason == "timeout"
    assert SLOW_TIMEOUT <= r.duration_s < SLOW_TIMEOUT + 3.0


def test_fork_bomb_is_contained(hostile):
    r = hostile["results"]["fork_bomb"]
    assert not r.passed
    assert r.duration_s < SLOW_TIMEOUT + 3.0
    assert not _procs_matching(hostile["env"]["bomb"].encode()), "fork bomb processes survived"
    # other agents share this machine, so allow some slack; a live fork bomb would add thousands
    assert _proc_count() < hostile["procs_before"] + 50


def test_huge_allocation_fails_cleanly(hostile):
    r = hostile["results"]["allocate_10gb"]
    assert not r.passed and not r.timed_out
    assert "MemoryError" in r.stderr_tail or r.signal is not None, r


def test_writes_outside_do_not_reach_host(hostile):
    r = hostile["results"]["write_outside"]
    assert not r.passed, r
    assert not Path(hostile["env"]["write_private"]).exists()
    assert not Path(hostile["env"]["write_world"]).exists()
    assert not Path(hostile["env"]["write_rootonly"]).exists()


def test_socket_gets_no_connection(hostile):
    r = hostile["results"]["socket"]
    assert not r.passed, r
    assert not hostile["connected"], "a connection reached the host's listening socket"


def test_deleting_host_files_fails(hostile):
    r = hostile["results"]["delete_files"]
    assert not r.passed, r
    assert Path(hostile["env"]["sentinel"]).read_text() == "keep me"
    assert Path(hostile["env"]["sentinel_rootonly"]).read_text() == "keep me"
    assert (Path(hostile["env"]["sentinel_dir"]) / "inner.txt").exists()


def test_setsid_daemon_does_not_survive(hostile):
    r = hostile["results"]["setsid_daemon"]
    assert not r.passed
    assert not _procs_matching(hostile["env"]["daemon"].encode()), "daemon survived the sandbox"


def test_batch_ran_concurrently(hostile):
    # nine samples, two of them 1.5 s timeouts: sequential would take well over 3 s
    assert hostile["wall"] < SLOW_TIMEOUT + 6.0


# ---- single-program checks ----------------------------------------------------------------------

def test_environment_is_scrubbed_and_home_is_private():
    os.environ["SHARED_EVAL_TEST_SECRET"] = "s3cret"
    try:
        r = run_program("import os, json\nprint(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd()}))\n", 5.0)
    finally:
        del os.environ["SHARED_EVAL_TEST_SECRET"]
    assert r.passed, r
    out = json.loads(r.stdout_tail)
    assert "SHARED_EVAL_TEST_SECRET" not in out["env"] and "s3cret" not in r.stdout_tail
    assert set(out["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "SHARED_EVAL_SANDBOX", "LC_CTYPE"}
    assert out["env"]["HOME"] == out["cwd"]


def test_working_folder_is_deleted_afterwards():
    r = run_program("import os\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())\n", 5.0,
                    SandboxConfig(isolation="process"))
    assert r.passed, r
    assert not Path(r.stdout_tail.strip()).exists()


def test_output_beyond_file_size_limit_is_stopped():
    r = run_program("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", 5.0,
                    SandboxConfig(file_size_bytes=1 << 20))
    assert not r.passed and not r.timed_out
    assert len(r.stdout_tail) <= SandboxConfig().output_tail_chars


def test_runs_under_a_dropped_uid_when_root():
    iso = probe_isolation()
    if not (iso.is_root and iso.namespaces):
        pytest.skip("uid drop is used as root with namespaces")
    r = run_program("import os\nprint(os.getuid(), os.geteuid())\n", 5.0)
    assert r.passed, r
    uid, euid = map(int, r.stdout_tail.split())
    assert uid == euid == r.uid and uid != 0


def test_process_count_is_capped_without_the_guard():
    """RLIMIT_NPROC on the fresh uid is what stops a fork bomb when the audit hook is bypassed."""
    iso = probe_isolation()
    if not (iso.is_root and iso.namespaces):
        pytest.skip("the per-sample uid (and so RLIMIT_NPROC as root) needs root with namespaces")
    src = textwrap.dedent("""
        import os, time
        made = 0
        for _ in range(64):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            made += 1
        print(made)
        """)
    r = run_program(src, 8.0, SandboxConfig(python_guard=False, max_processes=6))
    assert r.passed, r
    assert int(r.stdout_tail) == 5  # 6 tasks for the uid: this process and 5 children


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        run_program("pass", 0)
    with pytest.raises(ValueError, match="isolation must be one of"):
        SandboxConfig(isolation="docker")
    with pytest.raises(TypeError):
        run_program(b"pass", 1.0)


def test_namespaces_work_from_a_private_folder_under_tmp(tmp_path):
    """An interpreter and checkout inside a 0700 folder under /tmp (a CI clone, pytest's tmp_path):
    the private tmpfs over /tmp hides that folder, which must not break the namespace layer."""
    import shutil
    import subprocess
    import sys

    if sys.platform != "linux" or shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs Linux, util-linux unshare and root (the namespace layer as CI runs it)")
    base = Path(tempfile.mkdtemp(prefix="sbx_private_", dir="/tmp"))
    try:
        os.chmod(base, 0o700)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], check=True)
        pkg = base / "checkout" / "sbx"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        eval_dir = Path(__file__).resolve().parents[1] / "shared" / "eval"
        for name in ("sandbox.py", "_sandbox_child.py"):
            shutil.copy(eval_dir / name, pkg / name)
        probe = ("import json; from sbx.sandbox import probe_isolation, run\n"
                 "iso = probe_isolation(); r = run('print(6 * 7)', 20)\n"
                 "print(json.dumps([iso.namespaces, iso.detail, r.passed, r.isolation, r.stdout_tail]))\n")
        out = subprocess.run([str(base / "venv" / "bin" / "python"), "-c", probe], cwd=base / "checkout",
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        namespaces, detail, passed, isolation, stdout = json.loads(out.stdout.strip().splitlines()[-1])
        assert namespaces, detail
        assert passed and stdout.strip() == "42" and isolation.startswith("namespaces"), (isolation, stdout)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_fallback_to_process_isolation_warns(monkeypatch):
    import shared.eval.sandbox as sandbox

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.probe_isolation.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="process isolation only"):
            iso = sandbox.probe_isolation()
        assert not iso.namespaces
    finally:
        sandbox.probe_isolation.cache_clear()


def test_the_isolation_used_is_recorded_in_a_runs_provenance(tmp_path):
    run(source="print('hi')\n", timeout_s=20)
    used = isolation_used()
    assert used is not None and sum(used["layers"].values()) >= 1
    # the default config uses namespaces exactly when the machine has them; other tests may add process runs
    assert any(k.startswith("namespaces") for k in used["layers"]) == used["namespaces_available"]
    assert used["weaker_than_namespaces"] == any(not k.startswith("namespaces") for k in used["layers"])
    params = dict(scale="smoke", seed=0, out_dir=str(tmp_path), nproc_per_node=1, nnodes=1, data_dir=None,
                  overrides={})
    r = start_run("p", "nb", params, {"smoke": {"n": 1}}, theme=False)
    r.finish()
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["sandbox"] == isolation_used()
