"""Launching training jobs with torchrun, on one node, on several, or through SLURM.

One node (torchrun picks a free port)::

    python -m torch.distributed.run --standalone --nproc-per-node 8 --max-restarts 2 -m shared.train.worker ...

Several nodes: the same command on every node, c10d rendezvous on one ``host:port`` that every node
reaches, and a rendezvous id that every node derives alike from the run directory (``run_rdzv_id``)::

    python -m torch.distributed.run --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint node0:29500 --rdzv-id <id> --max-restarts 2 -m shared.train.worker ...

SLURM: ``write_sbatch`` writes ``run_dir/launch.sbatch`` (one task per node; ``srun`` starts torchrun
on each node; the first node of the allocation is the rendezvous host) and ``launch(...,
launcher="slurm")`` submits it with ``sbatch --wait`` and follows the first node's log.

What ``launch`` does on this node: streams the output of local rank 0 (and torchrun's own lines) to
this process's stdout while the job runs, and to ``<log_dir>/launch.<host>.log``; every other local
rank writes ``<log_dir>/rank<R>.log`` (``shared.train.worker`` redirects them), so nodes never write
the same file. Workers that fail are restarted up to ``max_restarts`` times by torchrun; an entry
point that trains with ``TrainConfig(resume="latest")`` continues from its latest checkpoint.

Environment: ``SHARED_RDZV_ENDPOINT`` is the default rendezvous endpoint (notebooks set it from their
``rdzv_endpoint`` parameter) and ``SHARED_LAUNCHER`` the default launcher (``local`` | ``slurm`` |
``localhost``: every node on this machine, ``launch_localhost``, the CPU rehearsal of a multi-node launch).
``SHARED_NODE_RANK`` is this node's rank in a multi-node run with launcher ``local`` (0 on the node the
endpoint names; inside an ``srun`` step over the run's nodes SLURM_NODEID is used).

Which node hosts the rendezvous store: torch's c10d backend guesses it by matching the endpoint's host
to this machine, so with a loopback endpoint (several nodes on one host) every node tries to host it and
all but one fall back to being clients. When the node rank is known (``node_rank``, SHARED_NODE_RANK,
SLURM_NODEID) the command says so explicitly: ``--rdzv-conf is_host=1`` on node 0, ``is_host=0`` elsewhere.

Restarts: torch (2.4 and later) by default lets node rank 0's torchrun process host one TCPStore that the
workers of every restart share, and the workers use it without a per-restart prefix, so restarted
workers can read the previous attempt's keys (the gloo/NCCL addresses of dead processes) and fail to
connect, or wait for a peer that never comes (pytorch/pytorch#135712). Launches here set
``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1`` unless the caller set it: every rendezvous round then gets a
fresh store, hosted by the new global rank 0 worker.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

LAUNCHERS = ("local", "slurm", "localhost")
REPO_ROOT = Path(__file__).resolve().parents[2]
TAIL_CHARS = 4000


def run_rdzv_id(run_dir: str | Path) -> str:
    """A rendezvous id for one run: the same on every node (the run_dir is on a shared file system;
    under SLURM the job id is mixed in), different between runs, so two jobs never join each other."""
    key = str(Path(run_dir).resolve()) + os.environ.get("SLURM_JOB_ID", "")
    return "run-" + hashlib.sha1(key.encode()).hexdigest()[:12]


def default_rdzv_endpoint() -> str | None:
    return os.environ.get("SHARED_RDZV_ENDPOINT") or None


def default_launcher() -> str:
    launcher = os.environ.get("SHARED_LAUNCHER", "local")
    if launcher not in LAUNCHERS:
        raise ValueError(f"SHARED_LAUNCHER={launcher!r}; use one of {LAUNCHERS}")
    return launcher


def default_node_rank(nnodes: int, env: Mapping[str, str] | None = None) -> int | None:
    """This node's rank in a run of ``nnodes`` nodes, if ``env`` (default os.environ) says:
    SHARED_NODE_RANK, else SLURM_NODEID inside an ``srun`` step over exactly ``nnodes`` nodes; else None."""
    env = os.environ if env is None else env
    value = env.get("SHARED_NODE_RANK")
    if not value and env.get("SLURM_NODEID") and env.get("SLURM_STEP_NUM_NODES") == str(nnodes):
        value = env["SLURM_NODEID"]
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"SHARED_NODE_RANK / SLURM_NODEID must be an integer, got {value!r}") from None


def build_torchrun_command(target: str, args: Sequence[str] = (), *, nproc_per_node: int = 1,
                           nnodes: int = 1, module: bool = False, rdzv_endpoint: str | None = None,
                           rdzv_id: str = "shared-train", max_restarts: int = 0,
                           node_rank: int | None = None) -> list[str]:
    """argv of ``python -m torch.distributed.run ... target args``.

    target: a script path, or a module name with module=True. nnodes == 1 without an endpoint:
    ``--standalone`` (local rendezvous on a free port). Otherwise c10d rendezvous at
    ``rdzv_endpoint`` ("host:port"), which every node must reach. ``node_rank`` (0 .. nnodes-1, 0 being
    the node the endpoint names): node 0 hosts the rendezvous store and the others only connect to it
    (``--rdzv-conf is_host=1|0``); None leaves that to torch's guess from the endpoint's hostname.
    """
    if nproc_per_node < 1 or nnodes < 1:
        raise ValueError("nproc_per_node and nnodes must be >= 1")
    if max_restarts < 0:
        raise ValueError(f"max_restarts must be >= 0, got {max_restarts}")
    if node_rank is not None and not 0 <= node_rank < nnodes:
        raise ValueError(f"node_rank must be in [0, {nnodes}), got {node_rank}")
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if nnodes == 1 and rdzv_endpoint is None:
        cmd += ["--standalone"]
    else:
        if rdzv_endpoint is None:
            raise ValueError("multi-node runs need rdzv_endpoint='host:port' (a host every node reaches): pass "
                             "the notebook parameter rdzv_endpoint, or set SHARED_RDZV_ENDPOINT")
        if ":" not in rdzv_endpoint:
            raise ValueError(f"rdzv_endpoint must be 'host:port', got {rdzv_endpoint!r}")
        cmd += ["--nnodes", str(nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint,
                "--rdzv-id", rdzv_id]
        if node_rank is not None:
            cmd += ["--rdzv-conf", f"is_host={int(node_rank == 0)}"]
    cmd += ["--nproc-per-node", str(nproc_per_node), "--max-restarts", str(max_restarts)]
    if module:
        cmd += ["-m"]
    return cmd + [target, *map(str, args)]


def child_environment(env: dict[str, str] | None = None, log_dir: str | Path | None = None) -> dict[str, str]:
    """The environment of torchrun and its workers: OMP_NUM_THREADS=1 and
    TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 unless set (a fresh worker store on every restart; see the module
    docstring), this repository on PYTHONPATH, and SHARED_RANK_LOG_DIR (where ranks other than local rank
    0 write their output)."""
    child = dict(os.environ)
    child.setdefault("OMP_NUM_THREADS", "1")
    child.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    child["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), child.get("PYTHONPATH")) if p)
    if log_dir is not None:
        child["SHARED_RANK_LOG_DIR"] = str(Path(log_dir).resolve())
    child.update(env or {})
    return child


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL every process left in ``proc``'s session (started with start_new_session=True)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _stream(cmd: list[str], env: dict[str, str], log_file: Path, echo: bool, timeout: float | None) -> tuple[int, str]:
    """Run ``cmd``, copying its output line by line to ``log_file`` (and stdout when ``echo``) while it
    runs; returns (exit code, the output's tail). Kills it and raises TimeoutExpired after ``timeout`` s."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    tail: list[str] = []

    def copy(stream, log) -> None:
        for line in stream:
            log.write(line)
            log.flush()
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
            tail.append(line)
            if len(tail) > 200:
                del tail[:100]

    # its own session, so the whole job (torchrun and its workers) can be killed together
    with open(log_file, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, start_new_session=True)
        reader = threading.Thread(target=copy, args=(proc.stdout, log), daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=timeout)
        except BaseException as e:          # the timeout, or an interrupt of the notebook
            proc.terminate()                # torchrun stops its workers on SIGTERM
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            _kill_group(proc)
            proc.wait()
            reader.join(timeout=10)
            if isinstance(e, subprocess.TimeoutExpired):
                raise subprocess.TimeoutExpired(cmd, timeout, output="".join(tail)[-TAIL_CHARS:]) from None
            raise
        _kill_group(proc)                   # a straggler holding the pipe open would block the reader
        reader.join(timeout=60)
    return code, "".join(tail)[-TAIL_CHARS:]


def write_sbatch(run_dir: str | Path, worker_args: Sequence[str], *, nnodes: int, nproc_per_node: int,
                 max_restarts: int = 2, port: int = 29500, job_name: str | None = None,
                 sbatch_options: Sequence[str] = ()) -> Path:
    """Write ``run_dir/launch.sbatch`` and the per-node script it runs, ``run_dir/launch.node.sh``:
    ``srun`` starts torchrun once on each of ``nnodes`` nodes (``nproc_per_node`` GPUs each), c10d
    rendezvous on the allocation's first node, each node logging to ``logs/launch.<host>.log``.
    ``sbatch_options`` are extra ``#SBATCH`` options (e.g. ``["--partition=gpu", "--time=48:00:00"]``)."""
    if nnodes < 1 or nproc_per_node < 1:
        raise ValueError("nnodes and nproc_per_node must be >= 1")
    run_dir = Path(run_dir).resolve()
    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    q = shlex.quote
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nnodes), "--nproc-per-node",
                str(nproc_per_node), "--rdzv-backend", "c10d", "--max-restarts", str(max_restarts)]
    node = ["#!/bin/bash", "set -euo pipefail", f"cd {q(str(REPO_ROOT))}",
            f"export PYTHONPATH={q(str(REPO_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}",
            f"export SHARED_RANK_LOG_DIR={q(str(log_dir))}",
            "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}",
            "export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=${TORCH_DISABLE_SHARE_RDZV_TCP_STORE:-1}",
            # node 0 of the allocation is $SHARED_RDZV_HEAD: it hosts the rendezvous store
            'if [ "$SLURM_NODEID" = 0 ]; then IS_HOST=1; else IS_HOST=0; fi',
            " ".join(map(q, torchrun)) + f' --rdzv-endpoint "$SHARED_RDZV_HEAD:{port}"'
            + f' --rdzv-id "{run_rdzv_id(run_dir)}-$SLURM_JOB_ID" --rdzv-conf "is_host=$IS_HOST"'
            + " -m shared.train.worker "
            + " ".join(q(str(a)) for a in worker_args)
            + f' > {q(str(log_dir))}/launch."$(hostname)".log 2>&1']
    node_script = run_dir / "launch.node.sh"
    node_script.write_text("\n".join(node) + "\n")
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name or run_dir.name}", f"#SBATCH --nodes={nnodes}",
             "#SBATCH --ntasks-per-node=1", f"#SBATCH --gpus-per-node={nproc_per_node}",
             f"#SBATCH --output={log_dir}/slurm-%j.out"]
    lines += [f"#SBATCH {opt}" for opt in sbatch_options]
    lines += ["set -euo pipefail",
              'export SHARED_RDZV_HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
              f"srun --kill-on-bad-exit=1 bash {q(str(node_script))}"]
    path = run_dir / "launch.sbatch"
    path.write_text("\n".join(lines) + "\n")
    return path


def launch(target: str, args: Sequence[str] = (), *, nproc_per_node: int = 1, nnodes: int = 1,
           module: bool = False, rdzv_endpoint: str | None = None, rdzv_id: str = "shared-train",
           max_restarts: int = 0, env: dict[str, str] | None = None, log_dir: str | Path | None = None,
           echo: bool = False, check: bool = True, timeout: float | None = None,
           node_rank: int | None = None) -> subprocess.CompletedProcess:
    """Run ``target`` under torchrun on this node and wait (other nodes of a multi-node run start the
    same command). Output of local rank 0 and torchrun goes to ``log_dir/launch.<host>.log`` (and
    stdout with ``echo``); with ``log_dir`` None it is only captured. With check, a failure raises
    RuntimeError naming the log and ending with the output's tail. ``node_rank``: see
    ``build_torchrun_command``; by default, with nnodes > 1, ``default_node_rank`` of the workers'
    environment (``env`` included, e.g. SHARED_NODE_RANK)."""
    child_env = child_environment(env, log_dir)
    if node_rank is None and nnodes > 1:
        node_rank = default_node_rank(nnodes, child_env)
    cmd = build_torchrun_command(target, args, nproc_per_node=nproc_per_node, nnodes=nnodes, module=module,
                                 rdzv_endpoint=rdzv_endpoint, rdzv_id=rdzv_id, max_restarts=max_restarts,
                                 node_rank=node_rank)
    if log_dir is not None:
        node = child_env.get("SHARED_NODE_NAME") or socket.gethostname()   # SHARED_NODE_NAME: nodes sharing a host
        log_file = Path(log_dir) / f"launch.{node}.log"
        code, output = _stream(cmd, child_env, log_file, echo, timeout)
        where = f"; logs in {Path(log_dir).resolve()} (launch.<host>.log, rank<R>.log)"
    else:
        proc = subprocess.run(cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)
        code, output, where = proc.returncode, proc.stdout, ""
    if check and code != 0:
        raise RuntimeError(f"torchrun exited with {code}{where}: {' '.join(cmd)}\n"
                           f"--- output tail ---\n{output[-TAIL_CHARS:]}")
    return subprocess.CompletedProcess(cmd, code, output, None)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (for a rendezvous on this machine)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def launch_localhost(target: str, args: Sequence[str] = (), *, nnodes: int, nproc_per_node: int = 1,
                     module: bool = False, rdzv_endpoint: str | None = None, rdzv_id: str = "shared-train",
                     max_restarts: int = 0, env: dict[str, str] | None = None, log_dir: str | Path | None = None,
                     timeout: float | None = None) -> None:
    """Every node of a multi-node run on this machine, the CPU rehearsal of a cluster launch (launcher
    "localhost"): ``nnodes`` torchrun processes with c10d rendezvous at ``rdzv_endpoint`` (default: 127.0.0.1 on a
    free port), node k named ``node<k>`` (``SHARED_NODE_NAME``, so its log is ``launch.node<k>.log``; its rank in
    ``SHARED_NODE_RANK``). Node 0's output streams here. Raises RuntimeError naming every node that failed."""
    endpoint = rdzv_endpoint or f"127.0.0.1:{free_port()}"
    errors: dict[int, BaseException] = {}

    def node(k: int) -> None:
        try:
            launch(target, args, nproc_per_node=nproc_per_node, nnodes=nnodes, module=module, rdzv_endpoint=endpoint,
                   rdzv_id=rdzv_id, max_restarts=max_restarts, log_dir=log_dir, echo=k == 0, timeout=timeout,
                   env={**(env or {}), "SHARED_NODE_NAME": f"node{k}", "SHARED_NODE_RANK": str(k)})
        except BaseException as e:          # reported below, after every node has stopped
            errors[k] = e

    others = [threading.Thread(target=node, args=(k,), daemon=True) for k in range(1, nnodes)]
    for t in others:
        t.start()
    node(0)
    for t in others:
        t.join()
    if errors:
        raise RuntimeError("\n".join(f"node{k}: {e}" for k, e in sorted(errors.items())))


def submit_slurm(sbatch: str | Path, *, echo: bool = True, poll_s: float = 10.0) -> int:
    """``sbatch --wait`` the script, echoing the first node's launch log while the job runs; returns
    sbatch's exit code (the job's)."""
    sbatch = Path(sbatch)
    log_dir = sbatch.parent / "logs"
    proc = subprocess.Popen(["sbatch", "--wait", str(sbatch)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    shown: dict[Path, int] = {}
    while proc.poll() is None:
        time.sleep(poll_s)
        for log in sorted(log_dir.glob("launch.*.log"))[:1]:
            text = log.read_text(errors="replace")
            if echo and len(text) > shown.get(log, 0):
                sys.stdout.write(text[shown.get(log, 0):])
                sys.stdout.flush()
            shown[log] = len(text)
    if echo and proc.stdout is not None:
        sys.stdout.write(proc.stdout.read())
    return proc.returncode
