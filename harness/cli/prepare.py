"""`mu-bench prepare`: train (or load) a scenario's original and gold models (with a
`[stream]`, each prefix's too; with a `[family]`, each forget set's), and with `--method`
that method's training stage."""

from __future__ import annotations

import shutil
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..scenario import DEFAULT_SCENARIO
from .app import (
    DataRootOpt,
    DeviceOpt,
    ExecutorOpt,
    JobsOpt,
    JsonOpt,
    NoPresetOpt,
    ParamOpt,
    SeedsOpt,
    app,
    emit_json,
    out,
    say,
    show_progress,
    use_data_root,
)


@app.command()
def prepare(
    scenario: Annotated[
        str, typer.Argument(help="Scenario name or .toml path.")
    ] = DEFAULT_SCENARIO,
    device: DeviceOpt = "auto",
    data_root: DataRootOpt = None,
    method: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--method", "-m", help="Also run this method's training stage (SISA)."),
    ] = None,
    seeds: SeedsOpt = None,
    param: ParamOpt = None,
    no_preset: NoPresetOpt = False,
    jobs: JobsOpt = None,
    executor: ExecutorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train (or load from the cache) the original and gold models of a scenario, and with
    --method that method's training stage."""
    from ..device import resolve_device
    from ..isolation.executor import close, for_prepare, make_executor
    from ..scenario import load
    from ..submission.prepare import prepare as do_prepare

    show_progress()
    use_data_root(data_root)
    s = load(scenario)
    sub = None
    if method is not None:
        from ..method import parse_params
        from ..submission.plan import plan

        sub = plan(method, s, seeds, None, parse_params(param or []), not no_preset)
        if not sub.method.has_training_stage:
            raise UsageError(
                f"method '{method}' has no training stage (it does not implement train()); "
                "--method takes a method that does, such as sisa"
            )
    elif seeds is not None or param or no_preset:
        raise UsageError("--seeds, --param and --no-preset go with --method")

    def on_model(m) -> None:
        how = "cached" if m.cache_hit else f"trained in {m.train_seconds:.2f} s"
        if not m.cache_hit and m.trainer == "stacked":
            how += " (its share of a batched run)"
        say(f"{m.role} {m.index}: {how}")

    device = resolve_device(device)
    runs_on = make_executor(executor, jobs, device)
    stream = family = None
    try:
        if s.family is not None:  # each forget set's gold models, in turn
            from ..submission.family import forget_text, prepare_family

            family = prepare_family(s, device, on_model=on_model, executor=for_prepare(runs_on))
            art = family[0].art
        elif s.stream is not None:  # each earlier prefix's gold models too
            from ..submission.stream import prepare_stream

            stream = prepare_stream(s, device, on_model=on_model, executor=for_prepare(runs_on))
            art = stream.base
        else:
            art = do_prepare(s, device, on_model=on_model, executor=for_prepare(runs_on))
        reference = art.reference.summary()
        training = _prepare_training(sub, art, device, runs_on) if sub is not None else None
    finally:
        close(runs_on)
    doc = {
        "scenario": s.name,
        "scenario_hash": s.content_hash,
        "train_size": len(art.data.y_train),
        "test_size": len(art.data.y_test),
        "forget_size": len(art.split.forget_idx),
        "gold_models": len(art.gold),
        "holdout_gold_models": len(art.gold_holdout),
        "lira_in_models": len(art.in_models),
        "retrain_seconds": art.retrain_seconds,
        "trained_batched": sum(m.trainer == "stacked" for m in art.models),
        "forget_quality_ceiling": {
            str(n): {"mean": mean, "std": art.reference.ceiling_spreads.get(n)}
            for n, mean in art.reference.ceilings.items()
        },
        "cache_hits": sum(m.cache_hit for m in art.models),
        "original": reference["original"],
        "gold": reference["gold"],
    }
    if stream is not None:
        doc["stream"] = [
            {
                "request": p.index,
                "size": len(p.request),
                "deleted": len(p.deleted),
                "gold_models": len(p.art.gold),
                "retrain_seconds": p.art.retrain_seconds,
                "cache_hits": sum(m.cache_hit for m in p.art.gold),
            }
            for p in stream.prefixes
        ]
    if family is not None:
        doc["family"] = [
            {
                "draw": p.draw,
                "forget": forget_text(p),
                "forget_size": len(p.art.split.forget_idx),
                "gold_models": len(p.art.gold),
                "holdout_gold_models": len(p.art.gold_holdout),
                "retrain_seconds": p.art.retrain_seconds,
                "forget_quality_ceiling": {
                    str(n): {"mean": mean, "std": p.art.reference.ceiling_spreads.get(n)}
                    for n, mean in p.art.reference.ceilings.items()
                },
                "prepare_seconds": p.seconds,
                "cache_hits": sum(m.cache_hit for m in p.art.models),
                "models": len(p.art.models),
            }
            for p in family
        ]
    if training is not None:
        doc["method_training"] = training
    if as_json:
        emit_json(doc)
    else:
        out.print(doc)


def _prepare_training(sub, art, device: str, executor) -> list[dict]:
    """Run (or load) each seed's training stage; one summary per seed."""
    from ..submission.pipeline import work_folder
    from ..submission.training_stage import TrainedMethod, run_training_stage, trained_metrics

    work = work_folder(sub)
    try:
        stages = run_training_stage(sub, art, device, range(sub.seeds), executor, work / "train")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for seed, stage in stages.items():
        if isinstance(stage, TrainedMethod):
            rows.append(
                {
                    "seed": seed,
                    "status": "ok",
                    "cache_hit": stage.cache_hit,
                    **trained_metrics(stage, art),
                }
            )
        else:
            rows.append({"seed": seed, "status": stage.status, "error": stage.error})
    return rows
