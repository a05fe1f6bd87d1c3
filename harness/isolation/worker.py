"""The worker: run one request in its own process, files in and files out.

`python -m mu_bench.isolation.worker JOB_FOLDER`, or `run_in_child` in a child of the
warm fork server (`forkserver.py`). The worker reads `JOB_FOLDER/request.json` (the
protocol's `UnlearnRequest` or `TrainRequest`; a `TrainModelRequest` goes to
`train_model.py`, harness code only), sets torch's threads (`use_threads`), imports the
method's plugin module (the only place plugin code runs), validates its
hyperparameters, loads its inputs, writes
`output/started` just before the timed call (the budget covers that call, not the
interpreter's start), then writes the returned module's weights to `output/weights.pt`
and `output/result.json` last. Every exception, `SystemExit` included, becomes an
`error` result with its traceback; anything that kills the process leaves no result,
which the runner reports as `crashed`. Its working directory is `output/`.

An unlearn request builds an `UnlearnTask` (the starting model, the declared sets of
forget, retain and validation, and for a method with a training stage its state
folder, the rows' training-set positions and an empty `output/state/` for its updated
state); a train request builds a `TrainTask` (the whole training set and an empty
`output/state/`).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# Imported at module level on purpose: the fork server preloads this module, so every
# forked worker starts with torch and torch._dynamo (which the first optimizer of a
# process imports, about 1 s) already in memory. Importing does no tensor work.
import torch
import torch._dynamo  # noqa: F401

from .protocol import (
    OUTPUT,
    REQUEST,
    RESULT,
    STARTED,
    STATE,
    THREADS_ENV,
    WEIGHTS,
    TrainModelRequest,
    TrainRequest,
    UnlearnRequest,
    WorkerResult,
    parse_request,
)


def preload() -> None:
    """Import what every worker needs, so forked workers inherit it (the fork server)."""
    from .. import method, task  # noqa: F401
    from ..data import split  # noqa: F401
    from ..models import registry  # noqa: F401
    from ..toolkit import recipe, training  # noqa: F401


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def _load_method(request: UnlearnRequest | TrainRequest):
    module_name, _, attr = request.method.entry_point.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    return cls.model_validate(request.params)


def _load_split(folder: Path, name: str | None, augment: str, device: torch.device):
    from ..data.split import Split

    if name is None:
        return None
    data = torch.load(folder / name, weights_only=True)
    return Split(data["x"], data["y"], augment).to(device)


def _common(request: UnlearnRequest | TrainRequest) -> dict[str, Any]:
    """Task fields shared by both kinds; seeds the global RNGs with the request's seed."""
    from ..models.spec import ModelSpec
    from ..seeding import seed_everything
    from ..toolkit.recipe import TrainConfig

    seed_everything(request.rng_seed)
    return dict(
        num_classes=request.num_classes,
        seed=request.seed,
        rng_seed=request.rng_seed,
        device=torch.device(request.device),
        recipe=TrainConfig.model_validate(request.recipe),
        model_spec=ModelSpec.from_dict(request.model_spec),
        generator=torch.Generator().manual_seed(request.rng_seed),
        method_name=request.method.name,
    )


def _unlearn_task(folder: Path, request: UnlearnRequest, fields: dict[str, Any]):
    from ..models.registry import build_model
    from ..models.spec import ModelSpec
    from ..task import UnlearnTask

    inputs, device = request.inputs, fields["device"]
    model = build_model(ModelSpec.from_dict(request.start_spec or request.model_spec))
    model.load_state_dict(torch.load(folder / inputs["model"], weights_only=True))
    model.to(device).eval()
    augment = fields["recipe"].augment
    extra: dict[str, Any] = {}
    if "index" in inputs:
        index = torch.load(folder / inputs["index"], weights_only=True)
        state = folder / OUTPUT / STATE  # the state the next request of a stream gets
        state.mkdir(exist_ok=True)
        extra = dict(
            trained_dir=folder / inputs["trained_dir"],
            forget_index=index["forget"],
            retain_index=index["retain"],
            state_dir=state,
        )
    forget = _load_split(folder, inputs.get("forget"), augment, device)
    retain = _load_split(folder, inputs.get("retain"), augment, device)
    validation = _load_split(folder, inputs.get("validation"), augment, device)
    return lambda budget: UnlearnTask(
        model=model,
        budget=budget,
        forget_classes=request.forget_classes,
        initial_seed=request.initial_seed,
        forget_set=forget,
        retain_set=retain,
        validation_set=validation,
        **fields,
        **extra,
    )


def _train_task(folder: Path, request: TrainRequest, fields: dict[str, Any]):
    from ..task import TrainTask

    state = folder / OUTPUT / STATE
    state.mkdir(exist_ok=True)
    train = _load_split(folder, request.inputs["train"], fields["recipe"].augment, fields["device"])
    return lambda budget: TrainTask(train_set=train, state_dir=state, budget=budget, **fields)


def use_threads(threads: int | None) -> None:
    """torch's intra-op threads: the request's (an executor's share of the machine), else
    `$MU_BENCH_THREADS`, else torch's default. Set by the harness before plugin code runs.
    (`OMP_NUM_THREADS` cannot do it for a forked worker: OpenMP read it when the fork
    server imported torch.)"""
    if threads is None:
        env = os.environ.get(THREADS_ENV, "")
        threads = int(env) if env.isdigit() else None
    if threads:
        torch.set_num_threads(threads)


def run(folder: Path) -> WorkerResult:
    """Build the task, call the method on the clock and save what it returns."""
    from torch import nn

    from ..device import synchronize
    from ..task import Budget
    from ..toolkit.training import warm_up

    request = parse_request(json.loads((folder / REQUEST).read_text()))
    use_threads(request.threads)
    if isinstance(request, TrainModelRequest):  # harness code only: no plugin is imported
        from .train_model import run as train_model

        return train_model(folder, request)
    method = _load_method(request)
    fields = _common(request)
    if isinstance(request, UnlearnRequest):
        make_task, call = _unlearn_task(folder, request, fields), method.unlearn
    else:
        make_task, call = _train_task(folder, request, fields), method.train
    warm_up()
    (folder / OUTPUT / STARTED).write_text(str(time.time()))
    task = make_task(Budget(request.budget_seconds))
    synchronize(request.device)
    start = time.perf_counter()
    returned = call(task)
    synchronize(request.device)
    seconds = time.perf_counter() - start
    if not isinstance(returned, nn.Module):
        return WorkerResult(
            "invalid",
            seconds,
            f"{call.__name__}() returned {type(returned).__name__}, not a torch.nn.Module",
        )
    state = {k: v.detach().to("cpu").clone() for k, v in returned.state_dict().items()}
    torch.save(state, folder / OUTPUT / WEIGHTS)
    return WorkerResult("ok", seconds, metrics=dict(getattr(task, "reported", {})))


def run_in_child(folder: str, env: dict[str, str], sys_path: list[str]) -> None:
    """Entry point of a worker forked by the fork server (fds already redirected)."""
    os.environ.clear()
    os.environ.update(env)
    sys.path[:] = sys_path  # the harness's, so plugins it can import are importable here
    os.chdir(Path(folder) / OUTPUT)
    run_and_exit(Path(folder))


def run_and_exit(folder: Path) -> None:
    try:
        result = run(folder)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from a plugin included
        result = WorkerResult("error", None, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    _write_json(folder / OUTPUT / RESULT, result.to_json())
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave at once: a plugin's stray non-daemon threads must not keep the worker alive.
    os._exit(0)


def main() -> None:
    run_and_exit(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
