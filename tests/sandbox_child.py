"""The sandbox tests' helper: `python tests/sandbox_child.py SPEC.json`.

It plays the harness's fork-server chain in miniature: this process (the grandparent)
imports torch and the hostile plugin and does no tensor work; it forks a "server" (the
parent), which forks one worker per job, like the fork server does. Each worker makes
itself a session leader, points stdout/stderr at log files in its seed folder, confines
itself with `mu_bench.isolation.sandbox.confine` (unless the job's mechanism is "none") and runs
one attack from `mu_bench_hostile` (or "benign", the things a method must still be able
to do). The server watches the logs like the runner will, kills the worker's group when
it ends or breaks the log cap, and writes RESULTS/<job>.json: exit code, the reason
`sandbox.classify` gives, the attack's own report. Pids go to RESULTS/pids.json first.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path


def benign(seed: Path, inputs: list[str]) -> dict:
    """What a method does: read its inputs, import a library, train, write its folder."""
    import tempfile

    import torch

    got = {"inputs": [len(Path(p).read_bytes()) for p in inputs]}
    import tabulate  # noqa: F401  (an import from site-packages after confinement)

    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(torch.randn(32, 8)), torch.zeros(32).long())
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), seed / "unlearned.pt")
    with tempfile.NamedTemporaryFile(dir=None) as fh:  # TMPDIR: the seed's tmp/
        fh.write(b"scratch")
        got["tmp"] = fh.name
    got["trained"] = True
    return got


def policy_for(job: dict, spec: dict):
    """The job's policy, built by this interpreter as the harness builds a worker's."""
    from dataclasses import replace

    from mu_bench.isolation import sandbox

    policy = sandbox.worker_policy(
        job["seed_dir"], job["inputs"], spec["forbidden"], **job.get("policy_limits", {})
    )
    return replace(policy, read=policy.read + tuple(spec.get("extra_reads", ())))


def worker(seed: Path, job: dict, spec: dict) -> None:
    code = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, name in ((1, "stdout.log"), (2, "stderr.log")):
            handle = os.open(seed / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(handle, fd)
            os.close(handle)
        os.chdir(seed)
        from mu_bench.isolation import sandbox

        policy = policy_for(job, spec)
        os.environ.update(job.get("env", {}))
        # The kill attack also aims at the grandparent, by pid: /proc may be closed to it.
        victims = os.environ.get("MU_BENCH_HOSTILE_VICTIMS", "")
        os.environ["MU_BENCH_HOSTILE_VICTIMS"] = f"{victims},{spec['grandparent']}".strip(",")
        os.environ.update(policy.environment(str(seed / "tmp")))
        mechanism = job.get("mechanism", spec["mechanism"])
        if mechanism != "unconfined":
            info = sandbox.confine(policy, mechanism)
            (seed / "confinement.json").write_text(json.dumps(info.__dict__))
        if job["attack"] == "benign":
            (seed / "benign.json").write_text(json.dumps(benign(seed, job["inputs"])))
        else:
            import mu_bench_hostile as hostile

            aim = hostile.Aim(seed, inputs=[Path(p) for p in job["inputs"]])
            hostile.ATTACKS[job["attack"]](aim)
        code = 0
    except BaseException:
        try:
            (seed / "error.txt").write_text(traceback.format_exc())
        except OSError:
            sys.stderr.write(traceback.format_exc())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_job(job: dict, spec: dict, results: Path) -> None:
    from mu_bench.isolation import sandbox

    seed = Path(job["seed_dir"])
    (seed / "tmp").mkdir(parents=True, exist_ok=True)
    policy = policy_for(job, spec)
    clock = time.monotonic()
    pid = os.fork()
    if pid == 0:
        worker(seed, job, spec)
    logs = [seed / "stdout.log", seed / "stderr.log"]
    deadline = time.monotonic() + job.get("timeout", 60)
    log_over = timed_out = False
    status = None
    while status is None:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = raw
            break
        if sandbox.log_breach(logs, policy):
            log_over = True
        elif time.monotonic() > deadline:
            timed_out = True
        else:
            time.sleep(0.02)
            continue
        os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)  # whatever the worker started
    if log_over:
        for log in logs:
            sandbox.cap_log(log, policy.log_bytes)

    def read(name: str) -> str:
        try:
            return (seed / name).read_text(errors="replace")
        except OSError:
            return ""

    evidence = read("error.txt") + read("stderr.log")[-4000:]
    record = {
        "code": code,
        "seconds": time.monotonic() - clock,
        "timed_out": timed_out,
        "log_over": log_over,
        "reason": sandbox.classify(code, evidence, policy, log_over=log_over),
        "attack": json.loads(read("attack.json") or "{}"),
        "benign": json.loads(read("benign.json") or "{}"),
        "confinement": json.loads(read("confinement.json") or "{}"),
        "error": read("error.txt")[-2000:],
    }
    (results / f"{job['name']}.json").write_text(json.dumps(record, indent=1))


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    sys.path.insert(0, spec["plugin_dir"])
    import mu_bench_hostile  # noqa: F401
    import torch  # noqa: F401  (the fork server's preload; no tensor work before forking)

    from mu_bench.isolation import sandbox  # noqa: F401

    results = Path(spec["results"])
    grandparent = os.getpid()
    server = os.fork()
    if server == 0:
        code = 0
        try:
            pids = {"grandparent": grandparent, "parent": os.getpid()}
            spec["grandparent"] = grandparent
            (results / "pids.json").write_text(json.dumps(pids))
            for job in spec["jobs"]:
                run_job(job, spec, results)
        except BaseException:
            (results / "server-error.txt").write_text(traceback.format_exc())
            code = 1
        os._exit(code)
    _, status = os.waitpid(server, 0)
    (results / "server.json").write_text(json.dumps({"status": status}))
    sys.exit(0 if status == 0 else 3)


if __name__ == "__main__":
    main()
