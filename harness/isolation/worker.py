"""The worker: run one request in its own process, files in and files out.

`python -m mu_bench.isolation.worker JOB_FOLDER` (or `mu_bench.isolation.confined`,
which confines the process first), or `run_in_child` in a child of the warm fork server
(`forkserver.py`), which confines it before calling `run_and_exit`. The worker reads
`JOB_FOLDER/request.json` (the protocol's `UnlearnRequest`, `TrainRequest` or
`InspectRequest`; a `TrainModelRequest` goes to `train_model.py`, harness code only),
sets torch's threads (`use_threads`), builds the task from its inputs (harness code
only), then hands over: one byte on the start pipe (`START_FD_VAR`), whose arrival
starts the runner's clock, and only then imports the method's plugin module (the only
place plugin code runs), validates its hyperparameters and calls it. So everything
plugin code does, its import included, falls inside the window the runner measures, and
nothing the plugin does can move the start. It writes the returned module's weights to
`output/weights.pt` and `output/result.json` last. Every exception, `SystemExit`
included, becomes an `error` result with its traceback; anything that kills the process
leaves no result, which the runner reports as `crashed`. Its working directory is
`output/`.

An unlearn request builds an `UnlearnTask` (the starting model, the declared sets of
forget, retain and validation, and for a method with a training stage its state
folder, the rows' training-set positions and an empty `output/state/` for its updated
state); a train request builds a `TrainTask` (the whole training set and an empty
`output/state/`); an inspect request describes the method (`MethodInfo` in
`output/method.json`): fields, validated parameters, preset, declarations, output spec;
a check request runs `mu-bench check`'s static checks on the method's class
(`contract.static_report`, loaded before the plugin is imported) and writes a
`CheckReport` to `output/checks.json`.
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
# forked worker starts with torch already in memory (and torch._dynamo, see
# `preload_compiler`). Importing does no tensor work.
import torch

from .protocol import (
    CHECK_REPORT,
    METHOD_INFO,
    OUTPUT,
    REQUEST,
    RESULT,
    STATE,
    THREADS_ENV,
    WEIGHTS,
    CheckRequest,
    InspectRequest,
    MethodInfo,
    TrainModelRequest,
    TrainRequest,
    UnlearnRequest,
    WorkerResult,
    parse_request,
)

# The descriptor of the start pipe's write end, set by whoever started the worker.
START_FD_VAR = "MU_BENCH_START_FD"


def preload() -> None:
    """Import what every worker needs, so forked workers inherit it (the fork server):
    harness code only, the public API for plugins included, whose import a method's
    clock would otherwise count (4-8 ms a worker, as much again before the clock)."""
    import torch.utils.serialization  # noqa: F401  (torch.save's, imported on first use)

    from .. import api, device, method, seeding, task  # noqa: F401
    from ..data import augment, split  # noqa: F401
    from ..models import networks, registry  # noqa: F401
    from ..toolkit import recipe, training  # noqa: F401


def preload_compiler() -> None:
    """Import torch._dynamo, which the first `torch.optim` optimizer of a process imports
    (about 1.3 s of CPU, 0.8 s with the collector off): every job that trains or unlearns
    needs it, a description or a check of a plugin does not (the fork server imports it
    while the first of those runs). No collection while its objects are made; frozen
    after, as `forkserver.serve`'s."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    import torch._dynamo  # noqa: F401

    gc.freeze()
    if enabled:
        gc.enable()


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def hand_over() -> None:
    """Tell the runner that plugin code starts now: one byte on the start pipe, which is
    then closed (the plugin can neither move nor repeat the signal)."""
    fd = os.environ.pop(START_FD_VAR, None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"s")
    finally:
        os.close(int(fd))


def _plugin_class(request: UnlearnRequest | TrainRequest | InspectRequest | CheckRequest):
    module_name, _, attr = request.method.entry_point.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _load_method(request: UnlearnRequest | TrainRequest):
    return _plugin_class(request).model_validate(request.params)


def _inspect(folder: Path, request: InspectRequest) -> WorkerResult:
    """Describe the method (see `MethodInfo`); a failed import raises (an `error` result)."""
    from ..errors import UsageError
    from ..method import Method, has_training_stage, instantiate, method_detail, read_sets
    from ..models.spec import ModelSpec

    start = time.perf_counter()
    name = request.method.name
    cls = _plugin_class(request)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        problem = f"method '{name}' is {cls!r}, not a mu_bench Method subclass"
        _write_json(folder / OUTPUT / METHOD_INFO, MethodInfo(name, problem=problem).to_json())
        return WorkerResult("ok", time.perf_counter() - start)
    preset, merged, source = None, {}, None
    if request.preset_values is not None:  # a preset file's, instead of the built-in one
        preset, merged = request.preset_name, dict(request.preset_values)
    elif request.use_preset and request.dataset is not None:
        preset, merged = cls.preset_for(request.dataset, request.forget_rule or "")
        source = cls.preset_sources.get(preset) if preset is not None else None
    merged.update(request.params)
    standard: dict[str, Any] = {}
    if request.dataset is not None:  # the board's overrides are measured from these
        _, values = cls.preset_for(request.dataset, request.forget_rule or "")
        for base in (values, {}):  # a preset that does not validate: the defaults
            try:
                standard = cls.model_validate(base).model_dump(mode="json")
                break
            except ValueError:
                continue
    checked: list[str | None] = []
    for candidate in request.candidates:
        try:
            instantiate(cls, name, dict(candidate))
            checked.append(None)
        except UsageError as exc:
            checked.append(str(exc))
    problem, params, specs = None, {}, []
    try:
        method = instantiate(cls, name, merged)
        params = method.model_dump(mode="json")
        for spec in request.model_specs:
            try:
                out = method.output_spec(ModelSpec.from_dict(spec))
                specs.append((spec, out.to_dict()))
            except Exception as exc:
                problem = f"method '{name}': output_spec() raised {type(exc).__name__}: {exc}"
                break
    except UsageError as exc:
        problem = str(exc)
    reads = cls.reads
    try:
        read_sets(reads)
    except UsageError as exc:  # plan names it; the description stays well-formed
        problem, reads = problem or f"method '{name}' declares {exc}", "none"
    budget = getattr(cls, "default_budget", None)
    names = getattr(cls, "train_fields", None)
    info = MethodInfo(
        name=name,
        summary=cls.summary(),
        fields=tuple(
            {
                "name": k,
                "type": getattr(f.annotation, "__name__", str(f.annotation)),
                "default": repr(f.default),
            }
            for k, f in cls.model_fields.items()
        ),  # fmt: skip
        fields_text=cls.describe_fields(),
        params=params,
        preset=preset,
        reads=reads,
        scope=cls.scope,
        train_fields=None if names is None else tuple(str(n) for n in names),
        train_version=str(cls.train_version),
        default_budget=None if budget is None else str(budget),
        has_training_stage=has_training_stage(cls),
        output_specs=tuple(specs),
        problem=problem,
        preset_source=None if source is None else str(source),
        search_space={str(k): str(v) for k, v in dict(cls.search_space).items()},
        candidate_problems=tuple(checked),
        standard_params=standard,
        detail=method_detail(cls) if request.detail else None,
    )
    _write_json(folder / OUTPUT / METHOD_INFO, info.to_json())
    return WorkerResult("ok", time.perf_counter() - start)


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
    use_threads(getattr(request, "threads", None))
    if isinstance(request, InspectRequest):
        hand_over()
        return _inspect(folder, request)
    if isinstance(request, CheckRequest):
        # The check logic is loaded (with everything it imports) before any plugin code.
        from ..contract import static_report

        hand_over()
        start = time.perf_counter()
        load = lambda: _plugin_class(request)  # noqa: E731
        report = static_report(request.method.name, request.method.entry_point, load)
        _write_json(folder / OUTPUT / CHECK_REPORT, report.to_json())
        return WorkerResult("ok", time.perf_counter() - start)
    if isinstance(request, TrainModelRequest):  # harness code only: no plugin is imported
        from .train_model import run as train_model

        return train_model(folder, request, hand_over)
    fields = _common(request)
    if isinstance(request, UnlearnRequest):
        make_task = _unlearn_task(folder, request, fields)
    else:
        make_task = _train_task(folder, request, fields)
    warm_up()
    task = make_task(Budget(request.budget_seconds))
    synchronize(request.device)
    hand_over()  # plugin code from here on: the runner's clock runs
    method = _load_method(request)
    call = method.unlearn if isinstance(request, UnlearnRequest) else method.train
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


def run_in_child(
    folder: str,
    env: dict[str, str],
    sys_path: list[str],
    sandbox: dict | None = None,
    start_fd: int | None = None,
) -> None:
    """Entry point of a worker forked by the fork server (fds already redirected): take
    the harness's environment and import path, confine the process (`sandbox`: the
    runner's `{"policy", "mechanism"}`), run the request and exit."""
    os.environ.clear()
    os.environ.update(env)
    if start_fd is not None:
        os.environ[START_FD_VAR] = str(start_fd)
    sys.path[:] = sys_path  # the harness's, so plugins it can import are importable here
    os.chdir(Path(folder) / OUTPUT)
    if sandbox is not None:
        from .sandbox import confine_or_exit

        confine_or_exit(sandbox, keep_fds=() if start_fd is None else (start_fd,))
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
