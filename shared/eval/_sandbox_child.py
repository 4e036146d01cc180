"""Bootstrap of one sandboxed program: ``python -I -B _sandbox_child.py CONFIG_JSON``.

Runs (as root when the host is root) inside the namespaces that ``shared.eval.sandbox`` asked
``unshare`` for, or as a plain child process in the fallback. Standard library only: it must not
import the host's packages. Steps, in order:

1. read the config and the program (the host's staging folder is hidden by step 2);
2. private mounts (namespace mode): tmpfs over /tmp, /var/tmp, /dev/shm, /run, and over any
   non-traversable ancestor of the interpreter (e.g. /root when Python lives in /root/.pyenv), with
   the interpreter's own folders bound back read-only, so a dropped uid can still import the stdlib
   while /root's contents disappear;
3. fork: this process stays as a supervisor (PID 1 of the namespace) that waits and reports the exit
   status; when it exits the kernel kills everything left in the PID namespace;
4. the child: its own working folder, scrubbed environment, rlimits, no_new_privs, a fresh uid/gid
   (RLIMIT_NPROC then counts only this sandbox's tasks), parent-death signal, the audit-hook guard,
   and finally ``exec`` of the program as ``__main__``.

Exit status 121 with a ``sandbox-setup-error:`` line on stderr means the sandbox itself failed.
"""
import ctypes
import json
import os
import resource
import signal
import stat
import sys
import threading
import types

SETUP_ERROR_EXIT = 121
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 0x1, 0x2, 0x4, 0x20
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
# world-writable places, and /run (host unix sockets such as dbus live there)
COVER_WITH_TMPFS = ("/tmp", "/var/tmp", "/dev/shm", "/run")
NS_WORKDIR = "/tmp/sandbox"

# Audit events refused outright by the guard (defence in depth; the OS layers are the boundary).
BLOCKED_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
    "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill", "os.startfile", "os.chroot",
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.cdata", "ctypes.call_function",
    "resource.setrlimit", "resource.prlimit", "sys.remote_exec", "urllib.Request", "webbrowser.open",
})
# Events whose first (and for renames, second) argument is a path that must stay in the workdir.
PATH_EVENTS = frozenset({
    "os.remove", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown", "os.utime",
    "os.symlink", "os.link", "os.rename", "shutil.rmtree", "os.mkfifo", "os.mknod", "os.setxattr",
    "os.removexattr",
})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _fail(message):
    sys.stderr.write(f"sandbox-setup-error: {message}\n")
    sys.stderr.flush()
    os._exit(SETUP_ERROR_EXIT)


class _Libc:
    def __init__(self):
        self.lib = ctypes.CDLL(None, use_errno=True)

    def mount(self, source, target, fstype, flags, data=None):
        enc = (lambda s: None if s is None else s.encode())
        if self.lib.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount({source!r} -> {target!r}): {os.strerror(err)}")

    def prctl(self, option, arg):
        if self.lib.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def _traversable_by_others(path):
    st = os.stat(path)
    return stat.S_ISDIR(st.st_mode) and bool(st.st_mode & stat.S_IXOTH)


def _first_blocked_ancestor(path):
    """The shallowest directory on the way to `path` (itself included) that others cannot traverse."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        d = "/" + "/".join(parts[:i])
        if not _traversable_by_others(d):
            return d
    return None


def _interpreter_dirs():
    dirs = {sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix,
            os.path.dirname(os.path.realpath(sys.executable))}
    dirs.update(p for p in sys.path if p)
    dirs = {os.path.realpath(d) for d in dirs if os.path.isdir(d)}
    # keep only outermost folders
    return sorted(d for d in dirs if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in dirs))


def _under(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def private_mounts(libc, tmpfs_bytes, drop_uid):
    """Make mounts private, cover world-writable dirs and blocked ancestors, rebind the interpreter."""
    libc.mount(None, "/", None, MS_REC | MS_PRIVATE)
    covers = [d for d in COVER_WITH_TMPFS if os.path.isdir(d) and not os.path.islink(d)]
    if drop_uid:
        for d in _interpreter_dirs():
            blocked = _first_blocked_ancestor(d)
            if blocked and blocked != "/" and blocked not in covers:
                covers.append(blocked)
    # A cover inside another cover (say a 0700 checkout under /tmp) is hidden by the outer tmpfs
    # already, and its mount point no longer exists once that tmpfs is on; keep only outermost covers.
    covers = [c for c in covers if not any(o != c and _under(c, o) for o in covers)]
    keep = [d for d in _interpreter_dirs() if any(_under(d, c) for c in covers)]
    fds = {d: os.open(d, os.O_PATH | os.O_DIRECTORY) for d in keep}
    for c in sorted(covers, key=len):
        libc.mount("tmpfs", c, "tmpfs", MS_NOSUID | MS_NODEV,
                   f"size={tmpfs_bytes},mode={'1777' if c in COVER_WITH_TMPFS else '755'}")
    for d, fd in fds.items():
        os.makedirs(d, 0o755, exist_ok=True)
        libc.mount(f"/proc/self/fd/{fd}", d, None, MS_BIND | MS_REC)
        libc.mount(None, d, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)


def _as_path(p):
    if isinstance(p, int):
        return None
    return os.fsdecode(os.fspath(p))


def install_guard(workdir):
    """Audit hook refusing process/network/ctypes events and writes outside `workdir`."""
    root = os.path.realpath(workdir)
    allowed_write = (root, "/dev/null")
    local = threading.local()

    def inside(path, dir_fd=None):
        if path is None:
            return True
        if dir_fd is not None and not os.path.isabs(path):
            return False
        real = os.path.realpath(path)
        return any(_under(real, a) for a in allowed_write)

    def deny(event, detail=""):
        raise PermissionError(f"sandbox: {event} is not allowed {detail}".rstrip())

    def hook(event, args):
        if getattr(local, "busy", False):
            return
        local.busy = True
        try:
            if event in BLOCKED_EVENTS:
                deny(event)
            elif event == "open":
                path, mode, flags = args
                path = _as_path(path)
                writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                          (isinstance(flags, int) and flags & WRITE_FLAGS)
                if writing and not inside(path):
                    deny(event, f"for writing outside the sandbox folder: {path!r}")
            elif event in PATH_EVENTS:
                paths = [args[0]] + ([args[1]] if event in ("os.rename", "os.symlink", "os.link") else [])
                dir_fd = args[-1] if event in ("os.remove", "os.rmdir", "os.mkdir") else None
                for p in paths:
                    p = _as_path(p)
                    if p is not None and not inside(p, dir_fd if isinstance(dir_fd, int) else None):
                        deny(event, f"outside the sandbox folder: {p!r}")
        finally:
            local.busy = False

    sys.addaudithook(hook)


def _set_limits(limits):
    pairs = {"as": resource.RLIMIT_AS, "cpu": resource.RLIMIT_CPU, "fsize": resource.RLIMIT_FSIZE,
             "nofile": resource.RLIMIT_NOFILE, "nproc": resource.RLIMIT_NPROC, "core": resource.RLIMIT_CORE}
    for name, value in limits.items():
        if value is None:
            continue
        soft, hard = (value, value + 1) if name == "cpu" else (value, value)
        resource.setrlimit(pairs[name], (soft, hard))


def prepare_child(cfg, libc, workdir, source):
    """In the forked child: folder, env, limits, identity, guard. Returns the program's path."""
    uid = cfg["uid"]
    os.makedirs(workdir, 0o700, exist_ok=True)
    program = os.path.join(workdir, "program.py")
    with open(program, "w", encoding="utf-8") as f:
        f.write(source)
    if uid is not None:
        os.chown(workdir, uid, uid)
        os.chown(program, uid, uid)
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
                       "LANG": "C.UTF-8", "SHARED_EVAL_SANDBOX": cfg["marker"]})
    os.umask(0o077)
    _set_limits(cfg["limits"])
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:
            raise RuntimeError("privileges were not dropped")
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by the uid change; set again
    if cfg["guard"]:
        install_guard(workdir)
    return program


def supervise(pid, status_fd):
    """Wait for the program, report {exit_code | signal, cpu_s}, exit with a matching status."""
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            break
        except ChildProcessError:
            os._exit(SETUP_ERROR_EXIT)
        except InterruptedError:
            continue
    report = {"cpu_s": usage.ru_utime + usage.ru_stime}
    if os.WIFSIGNALED(status):
        report["signal"] = os.WTERMSIG(status)
        code = 128 + report["signal"]
    else:
        report["exit_code"] = code = os.waitstatus_to_exitcode(status)
    os.write(status_fd, json.dumps(report).encode())
    os.close(status_fd)
    os._exit(code)


def main():
    try:
        with open(sys.argv[1], encoding="utf-8") as f:
            cfg = json.load(f)
        with open(cfg["program_path"], encoding="utf-8") as f:
            source = f.read()
        status_fd = os.open(cfg["status_path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        libc = _Libc()
        if cfg["private_mounts"]:
            private_mounts(libc, cfg["tmpfs_bytes"], cfg["uid"] is not None)
            workdir = NS_WORKDIR
        else:
            workdir = cfg["workdir"]
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        pid = os.fork()
    except Exception as e:  # noqa: BLE001 - any setup failure is reported, never run the program
        _fail(f"{type(e).__name__}: {e}")
    if pid:
        supervise(pid, status_fd)
    try:
        os.close(status_fd)
        program = prepare_child(cfg, libc, workdir, source)
        code = compile(source, program, "exec")
    except SyntaxError:
        raise
    except Exception as e:  # noqa: BLE001
        _fail(f"{type(e).__name__}: {e}")
    module = types.ModuleType("__main__")
    module.__file__ = program
    module.__builtins__ = __builtins__
    sys.modules["__main__"] = module
    sys.argv = [program]
    sys.path[:0] = [workdir]
    return code, module.__dict__


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    _code, _globals = main()
    del main
    exec(_code, _globals)
