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


def run(seed_dir: Path) -> dict:
    from torch import nn

    from .device import synchronize
    from .models import ModelSpec, build_model
    from .scenario import TrainConfig
    from .seeding import seed_everything
    from .task import Budget, UnlearnTask
    from .training import warm_up

    spec = json.loads((seed_dir / "task.json").read_text())
    module_name, _, attr = spec["method"]["value"].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    method = cls.model_validate(spec["params"])
    device = torch.device(spec["device"])
    recipe = TrainConfig.model_validate(spec["recipe"])
    model_spec = ModelSpec.from_dict(spec["model_spec"])

    model = build_model(model_spec)
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

    warm_up()
    (seed_dir / "started").write_text(str(time.time()))
    budget = Budget(float(spec["budget_seconds"]))
    task = UnlearnTask(budget=budget, **task_kwargs)
    synchronize(spec["device"])
    start = time.perf_counter()
    result_model = method.unlearn(task)
    synchronize(spec["device"])
    seconds = time.perf_counter() - start

    if not isinstance(result_model, nn.Module):
        return {
            "status": "invalid",
            "unlearn_seconds": seconds,
            "error": f"unlearn() returned {type(result_model).__name__}, not a torch.nn.Module",
        }
    state = {k: v.detach().to("cpu").clone() for k, v in result_model.state_dict().items()}
    torch.save(state, seed_dir / "unlearned.pt")
    return {"status": "ok", "unlearn_seconds": seconds}


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
