"""Run one method seed in its own process: `python -m mu_bench.worker SEED_DIR`, or
`run_in_child` in a child of the warm fork server (see `mu_bench.forkserver`).

Files in, files out. The worker reads `SEED_DIR/task.json`, which names the method, its
validated hyperparameters, the seed, the budget and the input files it may read (the
original weights, and the forget and/or retain set as the method declares). It builds
the `UnlearnTask`, writes `started` just before calling `unlearn()` (the budget covers
that call only, not interpreter start-up), then writes the returned weights to
`unlearned.pt` and `result.json` last. Every exception, `SystemExit` included, becomes
an `error` result with its traceback; anything that kills the process leaves no
result, which the runner reports as `crashed`.

A task with `"stage": "train"` runs the method's training stage instead: it gets the
whole training set (`inputs.train`) and an empty `SEED_DIR/state/` folder, calls
`train()` under the same rules and writes the returned weights to `trained.pt`. For a
method with a training stage, `unlearn()` starts from `start_spec` (the architecture
`train` returned) and sees `inputs.trained_dir` and `inputs.index` (training-set
positions of the forget and retain rows). Numbers a method reports with
`task.report_metric` go into `result.json` under `metrics`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

# Imported at module level on purpose: the fork server preloads this module, so every
# forked worker starts with torch and torch._dynamo (which the first optimizer of a
# process imports, about 1 s) already in memory. Importing does no tensor work.
import torch
import torch._dynamo  # noqa: F401


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def _load_split(path: str | None, augment: str, device):

    from .task import Split

    if path is None:
        return None
    data = torch.load(path, weights_only=True)
    return Split(data["x"], data["y"], augment).to(device)


def _load_method(spec: dict):
    module_name, _, attr = spec["method"]["value"].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    return cls.model_validate(spec["params"])


def run(seed_dir: Path) -> dict:

    from .models import ModelSpec, build_model
    from .scenario import TrainConfig
    from .seeding import seed_everything
    from .task import Budget, UnlearnTask
    from .training import warm_up

    spec = json.loads((seed_dir / "task.json").read_text())
    if spec.get("stage") == "train":
        return run_train(seed_dir, spec)
    method = _load_method(spec)
    device = torch.device(spec["device"])
    recipe = TrainConfig.model_validate(spec["recipe"])
    model_spec = ModelSpec.from_dict(spec["model_spec"])

    model = build_model(ModelSpec.from_dict(spec.get("start_spec") or spec["model_spec"]))
    model.load_state_dict(torch.load(spec["inputs"]["model"], weights_only=True))
    model.to(device).eval()
    rng_seed = int(spec["rng_seed"])
    seed_everything(rng_seed)
    task_kwargs = dict(
        model=model,
        num_classes=int(spec["num_classes"]),
        seed=int(spec["seed"]),
        rng_seed=rng_seed,
        device=device,
        recipe=recipe,
        model_spec=model_spec,
        generator=torch.Generator().manual_seed(rng_seed),
        forget_classes=tuple(spec["forget_classes"]) if spec["forget_classes"] else None,
        method_name=spec["method"]["name"],
        initial_seed=spec.get("initial_seed"),
        forget_set=_load_split(spec["inputs"].get("forget"), recipe.augment, device),
        retain_set=_load_split(spec["inputs"].get("retain"), recipe.augment, device),
    )
    if spec["inputs"].get("index"):
        index = torch.load(spec["inputs"]["index"], weights_only=True)
        task_kwargs.update(
            trained_dir=Path(spec["inputs"]["trained_dir"]),
            forget_index=index["forget"],
            retain_index=index["retain"],
        )

    warm_up()
    (seed_dir / "started").write_text(str(time.time()))
    budget = Budget(float(spec["budget_seconds"]))
    task = UnlearnTask(budget=budget, **task_kwargs)
    result = _timed_call(method.unlearn, task, spec["device"], seed_dir / "unlearned.pt")
    if result["status"] == "ok":
        result["metrics"] = dict(task.reported)
    return result


def _timed_call(call, task, device: str, weights: Path) -> dict:
    """Run `unlearn` or `train` on the clock (CUDA-synchronised) and save the module it
    returns to `weights`; `unlearn_seconds` is the runner's name for the timed call,
    whichever stage it is."""
    from torch import nn

    from .device import synchronize

    synchronize(device)
    start = time.perf_counter()
    returned = call(task)
    synchronize(device)
    seconds = time.perf_counter() - start
    if not isinstance(returned, nn.Module):
        return {
            "status": "invalid",
            "unlearn_seconds": seconds,
            "error": f"{call.__name__}() returned {type(returned).__name__}, "
            "not a torch.nn.Module",
        }
    state = {k: v.detach().to("cpu").clone() for k, v in returned.state_dict().items()}
    torch.save(state, weights)
    return {"status": "ok", "unlearn_seconds": seconds}


def run_train(seed_dir: Path, spec: dict) -> dict:
    """The training stage: `method.train(TrainTask)`, timed like `unlearn()`."""

    from .models import ModelSpec
    from .scenario import TrainConfig
    from .seeding import seed_everything
    from .task import Budget, TrainTask
    from .training import warm_up

    method = _load_method(spec)
    device = torch.device(spec["device"])
    recipe = TrainConfig.model_validate(spec["recipe"])
    rng_seed = int(spec["rng_seed"])
    state_dir = seed_dir / "state"
    state_dir.mkdir(exist_ok=True)
    train_set = _load_split(spec["inputs"]["train"], recipe.augment, device)
    seed_everything(rng_seed)
    warm_up()
    (seed_dir / "started").write_text(str(time.time()))
    task = TrainTask(
        train_set=train_set,
        num_classes=int(spec["num_classes"]),
        seed=int(spec["seed"]),
        rng_seed=rng_seed,
        device=device,
        budget=Budget(float(spec["budget_seconds"])),
        recipe=recipe,
        model_spec=ModelSpec.from_dict(spec["model_spec"]),
        generator=torch.Generator().manual_seed(rng_seed),
        state_dir=state_dir,
        method_name=spec["method"]["name"],
    )
    return _timed_call(method.train, task, spec["device"], seed_dir / "trained.pt")


def run_in_child(seed_dir: str, env: dict[str, str], sys_path: list[str]) -> None:
    """Entry point of a worker forked by `mu_bench.forkserver` (fds already redirected)."""
    os.environ.clear()
    os.environ.update(env)
    sys.path[:] = sys_path  # the harness's, so plugins it can import are importable here
    os.chdir(seed_dir)
    run_and_exit(Path(seed_dir))


def main() -> None:
    run_and_exit(Path(sys.argv[1]))


def run_and_exit(seed_dir: Path) -> None:
    try:
        result = run(seed_dir)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from a plugin included
        result = {
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    _write_json(seed_dir / "result.json", result)
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave at once: a plugin's stray non-daemon threads must not keep the worker alive.
    os._exit(0)


if __name__ == "__main__":
    main()
