"""Process isolation for running model-written programs (host side).

Each program runs in a fresh ``python -I -B`` interpreter (``sys.executable``) started through
``_sandbox_child.py``. What this machine offers is probed once (``probe_isolation``) and the
strongest available mode is used:

``namespaces`` (util-linux ``unshare --fork --pid --net --mount --mount-proc --kill-child``; as
non-root also ``--user --map-root-user``):
  - new PID namespace: when its init (our supervisor) exits or is killed, the kernel kills every
    process left in it, including ones that called ``setsid()``; ``/proc`` shows only the sandbox;
  - new network namespace: only a loopback interface that is down, so nothing can connect anywhere;
  - new mount namespace (propagation private): tmpfs over /tmp, /var/tmp, /dev/shm, /run (the
    world-writable places and the host's unix sockets) and over folders others cannot traverse
    (e.g. /root), the interpreter bound back read-only; the working folder lives in that private
    /tmp and vanishes with the namespace;
  - as root: a fresh random uid/gid per sample (no capabilities, no_new_privs), so host files are
    protected by ordinary permissions and RLIMIT_NPROC (which root ignores) caps the sample's own
    task count: this is what contains a fork bomb. As non-root, the user namespace makes
    RLIMIT_NPROC count only the sandbox's tasks, but the program keeps the invoking user's file
    permissions outside the private mounts (only the guard protects the user's own files).

``process`` (fallback when namespaces are unavailable): a new session, the same rlimits, a fresh
uid only when the interpreter is readable by other users, a working folder under the host's temp
dir (deleted after), and the audit-hook guard. Weaker: no network isolation except the guard; as
root without a uid drop RLIMIT_NPROC does not apply, so only the guard stops ``os.fork``.

In every mode: RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE=0, a
scrubbed environment (HOME in the working folder), a wall-clock timeout, and at the end a sweep
that SIGKILLs every process of the sample's uid (or carrying its environment marker) until none is
left. The Python audit hook (``python_guard``) blocks process creation, signals, sockets, ctypes and
writes outside the working folder; it is defence in depth, not a boundary.
"""
from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

CHILD_SCRIPT = Path(__file__).with_name("_sandbox_child.py")
SETUP_ERROR_EXIT = 121
ISOLATION_MODES = ("auto", "namespaces", "process")
_UID_RANGE = (1 << 20, (1 << 31) - 2)


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and layers for one sandboxed run."""
    memory_bytes: int = 1 << 30          # RLIMIT_AS per process
    file_size_bytes: int = 16 << 20      # RLIMIT_FSIZE: largest file (and stdout/stderr) it may write
    max_processes: int = 8               # RLIMIT_NPROC for the sample's own uid / user namespace (tasks,
                                         # threads included); memory is per process, so the worst
                                         # case total is max_processes * memory_bytes
    max_open_files: int = 256            # RLIMIT_NOFILE
    tmpfs_bytes: int = 64 << 20          # size of each private tmpfs (namespace mode)
    isolation: str = "auto"              # auto | namespaces | process
    drop_privileges: bool = True         # as root: run the program under a fresh uid
    python_guard: bool = True            # audit-hook guard inside the child
    output_tail_chars: int = 4000

    def __post_init__(self):
        if self.isolation not in ISOLATION_MODES:
            raise ValueError(f"isolation must be one of {ISOLATION_MODES}, got {self.isolation!r}")
        for name in ("memory_bytes", "file_size_bytes", "max_processes", "max_open_files", "tmpfs_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class ProgramResult:
    """Outcome of one program. `passed` is True only for exit code 0 within the time limit."""
    passed: bool
    exit_code: int | None        # None when it timed out or was killed by a signal
    timed_out: bool
    reason: str                  # "passed", "timeout", "exit code 1: AssertionError", "signal SIGKILL", ...
    stderr_tail: str
    stdout_tail: str = ""
    signal: int | None = None
    duration_s: float = 0.0
    cpu_s: float | None = None
    isolation: str = ""          # layers actually used, e.g. "namespaces(pid,net,mount)+uid+rlimits+guard"
    uid: int | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Isolation:
    """What this machine lets the sandbox use (probed once per process)."""
    namespaces: bool
    unshare_cmd: tuple[str, ...]
    is_root: bool
    interpreter_world_readable: bool
    detail: str


def _interpreter_world_readable() -> bool:
    """Can a uid with no groups traverse to every folder of this interpreter?"""
    dirs = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}
    dirs.update(p for p in sys.path if p and os.path.isdir(p))
    for d in dirs:
        parts = Path(os.path.realpath(d)).parts
        for i in range(1, len(parts) + 1):
            st = os.stat(Path(*parts[:i]))
            if not st.st_mode & 0o001:
                return False
    return True


@functools.lru_cache(maxsize=1)
def probe_isolation() -> Isolation:
    """Try the whole namespace chain once with a trivial program; fall back to `process`."""
    is_root = os.geteuid() == 0
    readable = _interpreter_world_readable()
    unshare = shutil.which("unshare")
    if unshare is None:
        warnings.warn("sandbox: util-linux unshare not found, model-written programs run with process "
                      "isolation only", RuntimeWarning, stacklevel=2)
        return Isolation(False, (), is_root, readable, "util-linux unshare not found")
    cmd = [unshare] + ([] if is_root else ["--user", "--map-root-user"]) + \
        ["--fork", "--pid", "--net", "--mount", "--mount-proc", "--kill-child", "--"]
    cfg = SandboxConfig(isolation="namespaces", python_guard=True)
    result = _run(source="pass\n", timeout_s=20.0, cfg=cfg, unshare_cmd=tuple(cmd), is_root=is_root,
                  readable=readable)
    if result.passed:
        return Isolation(True, tuple(cmd), is_root, readable, "namespaces available")
    detail = f"namespace probe failed ({result.reason}): {result.stderr_tail[-300:]}"
    # Weaker isolation than the machine should give is never silent: say so once per process.
    warnings.warn(f"sandbox: namespace isolation unavailable, model-written programs run with process "
                  f"isolation only (see shared.eval.sandbox): {detail}", RuntimeWarning, stacklevel=2)
    return Isolation(False, (), is_root, readable, detail)


def describe_isolation(cfg: SandboxConfig | None = None) -> str:
    """The layers `run` would use with this config, e.g. for logs and reports."""
    cfg = cfg or SandboxConfig()
    iso = probe_isolation()
    return _layers(cfg, _mode(cfg, iso), _uid_possible(cfg, iso, _mode(cfg, iso)))


def _mode(cfg: SandboxConfig, iso: Isolation) -> str:
    if cfg.isolation == "namespaces" and not iso.namespaces:
        raise RuntimeError(f"namespace isolation requested but unavailable: {iso.detail}")
    if cfg.isolation == "process":
        return "process"
    return "namespaces" if iso.namespaces else "process"


def _uid_possible(cfg: SandboxConfig, iso: Isolation, mode: str) -> bool:
    if not (cfg.drop_privileges and iso.is_root):
        return False
    return mode == "namespaces" or iso.interpreter_world_readable


def _layers(cfg: SandboxConfig, mode: str, uid: bool) -> str:
    parts = ["namespaces(pid,net,mount)+private-tmp" if mode == "namespaces" else "process(session)"]
    if uid:
        parts.append("uid")
    parts.append("rlimits")
    if cfg.python_guard:
        parts.append("guard")
    return "+".join(parts)


# layers -> programs run with them in this process (what a run's provenance reports)
_LAYERS_USED: dict[str, int] = {}


def isolation_used() -> dict | None:
    """What the programs run in this process were isolated with, or None when none ran:
    ``{"layers": {layers: programs}, "namespaces_available": bool, "weaker_than_namespaces": bool,
    "detail": str}``. A run's provenance records it, so a fallback to process isolation shows."""
    if not _LAYERS_USED:
        return None
    iso = probe_isolation()
    return {"layers": dict(_LAYERS_USED), "namespaces_available": iso.namespaces,
            "weaker_than_namespaces": any(not k.startswith("namespaces") for k in _LAYERS_USED),
            "detail": iso.detail}


def run(source: str, timeout_s: float, config: SandboxConfig | None = None) -> ProgramResult:
    """Run `source` as a program under the strongest isolation available. See the module docstring."""
    if not isinstance(source, str):
        raise TypeError(f"source must be str, got {type(source).__name__}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    cfg = config or SandboxConfig()
    iso = probe_isolation()
    mode = _mode(cfg, iso)
    layers = _layers(cfg, mode, _uid_possible(cfg, iso, mode))
    _LAYERS_USED[layers] = _LAYERS_USED.get(layers, 0) + 1
    return _run(source, float(timeout_s), cfg, iso.unshare_cmd if mode == "namespaces" else None,
                iso.is_root, iso.interpreter_world_readable)


def _run(source: str, timeout_s: float, cfg: SandboxConfig, unshare_cmd: tuple[str, ...] | None,
         is_root: bool, readable: bool) -> ProgramResult:
    mode = "namespaces" if unshare_cmd else "process"
    drop_uid = cfg.drop_privileges and is_root and (mode == "namespaces" or readable)
    uid = _fresh_uid() if drop_uid else None
    marker = secrets.token_hex(8)
    staging = Path(tempfile.mkdtemp(prefix="shared_eval_sbx_"))
    proc = None
    start = time.monotonic()
    try:
        workdir = staging / "work"
        if mode == "process":
            workdir.mkdir(mode=0o700)
            if uid is not None:
                os.chmod(staging, 0o711)
                os.chown(workdir, uid, uid)
        (staging / "program.py").write_text(source, encoding="utf-8")
        cpu = int(timeout_s) + 1
        child_cfg = {
            "program_path": str(staging / "program.py"), "status_path": str(staging / "status.json"),
            "workdir": str(workdir), "private_mounts": mode == "namespaces", "uid": uid,
            "tmpfs_bytes": cfg.tmpfs_bytes, "guard": cfg.python_guard, "marker": marker,
            "limits": {"as": cfg.memory_bytes, "cpu": cpu, "fsize": cfg.file_size_bytes,
                       "nofile": cfg.max_open_files, "core": 0,
                       # as root without a uid drop RLIMIT_NPROC is ignored by the kernel anyway
                       "nproc": cfg.max_processes if (uid is not None or not is_root) else None},
        }
        cfg_path = staging / "config.json"
        cfg_path.write_text(json.dumps(child_cfg))
        argv = [sys.executable, "-I", "-B", str(CHILD_SCRIPT), str(cfg_path)]
        if unshare_cmd:
            argv = list(unshare_cmd) + argv
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "SHARED_EVAL_SANDBOX": marker}
        with open(staging / "stdout", "wb") as out, open(staging / "stderr", "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                    cwd=staging, start_new_session=True, close_fds=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        duration = time.monotonic() - start
        _kill_tree(proc, uid, marker, timed_out)
        status = _read_json(staging / "status.json")
        stderr = _tail(staging / "stderr", cfg.output_tail_chars)
        stdout = _tail(staging / "stdout", cfg.output_tail_chars)
    finally:
        if proc is not None and proc.poll() is None:
            _kill_tree(proc, uid, marker, True)
        shutil.rmtree(staging, ignore_errors=True)
    return _result(proc.returncode, timed_out, status, stderr, stdout, duration,
                   _layers(cfg, mode, uid is not None), uid)


def _result(returncode: int, timed_out: bool, status: dict, stderr: str, stdout: str, duration: float,
            layers: str, uid: int | None) -> ProgramResult:
    exit_code, sig = status.get("exit_code"), status.get("signal")
    if not status and not timed_out:  # supervisor never reported: sandbox failure or killed early
        exit_code = returncode if returncode >= 0 else None
        sig = -returncode if returncode < 0 else None
    if timed_out:
        exit_code, sig, reason = None, None, "timeout"
    elif sig is not None:
        try:
            reason = f"signal {signal.Signals(sig).name}"
        except ValueError:
            reason = f"signal {sig}"
        if sig == signal.SIGXCPU:
            reason += " (CPU time limit)"
        elif sig == signal.SIGXFSZ:
            reason += " (file size limit)"
    elif exit_code == 0:
        reason = "passed"
    elif exit_code == SETUP_ERROR_EXIT and "sandbox-setup-error" in stderr:
        reason = "sandbox setup failed: " + stderr.split("sandbox-setup-error:", 1)[1].strip()[:200]
    else:
        last = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        reason = f"exit code {exit_code}" + (f": {last[-1].strip()[:200]}" if last else "")
    passed = (not timed_out) and exit_code == 0 and sig is None
    return ProgramResult(passed=passed, exit_code=exit_code, timed_out=timed_out, reason=reason,
                         stderr_tail=stderr, stdout_tail=stdout, signal=sig, duration_s=duration,
                         cpu_s=status.get("cpu_s"), isolation=layers, uid=uid)


# ---- process bookkeeping -----------------------------------------------------------------------

def _fresh_uid() -> int:
    while True:
        uid = secrets.randbelow(_UID_RANGE[1] - _UID_RANGE[0]) + _UID_RANGE[0]
        if not pids_of_uid(uid):
            return uid


def _proc_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def pids_of_uid(uid: int) -> list[int]:
    """Host pids of processes whose real, effective, saved or fs uid is `uid`."""
    found = []
    for pid in _proc_pids():
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"Uid:"):
                        if uid in {int(x) for x in line.split()[1:]}:
                            found.append(pid)
                        break
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def pids_with_marker(marker: str) -> list[int]:
    """Host pids whose initial environment carries SHARED_EVAL_SANDBOX=<marker>."""
    needle = f"SHARED_EVAL_SANDBOX={marker}".encode()
    found = []
    for pid in _proc_pids():
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read():
                    found.append(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def _kill_tree(proc: subprocess.Popen, uid: int | None, marker: str, still_running: bool,
               deadline_s: float = 5.0) -> None:
    """SIGKILL the launcher and its process group (only while the launcher is unreaped, so the group
    id cannot have been reused), then every process of the uid / marker, until none is left."""
    if still_running and proc.returncode is None:
        for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
            try:
                kill()
            except (ProcessLookupError, PermissionError):
                pass
    try:
        proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        pass
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        pids = pids_of_uid(uid) if uid is not None else pids_with_marker(marker)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _tail(path: Path, chars: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4 * chars))
            return f.read().decode("utf-8", errors="replace")[-chars:]
    except FileNotFoundError:
        return ""
