"""The cost of a stream of deletion requests, and the model after the last one, side by
side for several methods in one run (SISA's setting: Bourtoule et al., S&P 2021).

On `digits-stream10` (the digits-random10 forget set, 130 images, deleted in 10
requests of 13), each method runs the whole stream through the harness
(`submission.stream.run_stream`: every request in its own worker, starting from the
previous request's output; SISA keeps its state). Printed per method: the cumulative
`unlearn()` time (each seed's times summed over the requests, median over seeds; with
--repeats, the median over repeats, which alternate the methods), its ratio to
`retrain`'s in the same run, the per-request time, and after the last request forget
quality (F, F / ceiling), forget and test accuracy and SalUn's avg gap; for SISA also
its one-off training stage (`train s`) and the test accuracy sharding costs it.

    .venv/bin/python benchmarks/stream_cost.py [--seeds 8] [--repeats 1]
        [--methods retrain,finetune,sisa,sisa:shards=20]

A method is `name` or `name:field=value;field=value`. The stream's gold models (8 per
request) are trained once and cached (about 1.2 s each here).

SISA's saving is the share of shards a request leaves alone: a request of m random
examples touches about S (1 - (1 - 1/S)^m) of its S shards. Measured (2 Dec, 8 seeds,
load about 2; `--methods retrain,sisa,sisa:shards=20`), cumulative unlearn() time against
retrain's in the same run:

    digits-stream10 (10 requests of 13):            sisa 0.99 (4.8 of 5 shards a
                                                    request), shards=20 0.55 (9.8 of 20)
    digits-stream-single.toml (10 requests of 1,    sisa 0.28, shards=20 0.14 (1 shard a
      in this folder: SISA's regime)                request), at 3.9 and 8.7 points of
                                                    test accuracy below retrain's
"""

from __future__ import annotations

import argparse
import statistics
import time


def parse_method(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition(":")
    params = dict(p.split("=", 1) for p in rest.split(";") if p)
    return name, params


def main() -> None:
    from mu_bench.scenario import load
    from mu_bench.submission.plan import plan
    from mu_bench.submission.stream import prepare_stream, run_stream

    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="digits-stream10")
    ap.add_argument("--methods", default="retrain,finetune,sisa,sisa:shards=20")
    ap.add_argument("--seeds", type=int, default=None, help="default: the scenario's")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    scenario = load(args.scenario)
    clock = time.perf_counter()
    stream = prepare_stream(scenario, "cpu")
    print(
        f"{args.scenario}: {len(stream.prefixes)} requests of "
        f"{[len(p.request) for p in stream.prefixes]} rows; prepared in "
        f"{time.perf_counter() - clock:.1f} s; retrain after each request "
        f"{statistics.median(stream.retrain_seconds):.2f} s (median over the prefixes)",
        flush=True,
    )
    methods = args.methods.split(",")
    cumulative: dict[str, list[float]] = {m: [] for m in methods}
    reports = {}
    for _ in range(args.repeats):
        for text in methods:
            name, params = parse_method(text)
            sub = plan(name, scenario, seeds=args.seeds, params=params)
            report = run_stream(sub, "cpu", stream=stream).evaluation.report
            if report.status != "ok":
                print(f"{text}: {report.status}: {[s.error for s in report.seeds][:2]}")
            cumulative[text].append(report.metrics.get("stream_unlearn_seconds", float("nan")))
            reports[text] = report
    base = statistics.median(cumulative[methods[0]])
    head = (
        f"{'method':<22}{'cum. unlearn s':>15}{'/ ' + methods[0]:>12}{'per request s':>15}"
        f"{'F':>7}{'F/ceil':>8}{'forget acc':>11}{'test acc':>9}{'avg gap':>8}"
        f"{'train s':>8}{'acc lost':>9}{'shards/req':>11}"
    )
    print(head)
    for text in methods:
        report, m = reports[text], reports[text].metrics
        spent = statistics.median(cumulative[text])
        per_request = statistics.median(
            r["metrics"].get("unlearn_seconds", float("nan")) for r in report.requests
        )
        retrained = [r["metrics"].get("method.shards_retrained") for r in report.requests]
        shards = statistics.mean(retrained) if None not in retrained else float("nan")
        print(
            f"{text:<22}{spent:>15.2f}{spent / base:>12.2f}{per_request:>15.3f}"
            f"{m.get('forget_quality', float('nan')):>7.3f}"
            f"{m.get('forget_quality_norm', float('nan')):>8.3f}"
            f"{m['forget_acc']:>11.3f}{m['test_acc']:>9.3f}{m['avg_gap']:>8.3f}"
            f"{m.get('train_seconds', float('nan')):>8.2f}"
            f"{m.get('trained_acc_drop', float('nan')):>9.3f}{shards:>11.1f}"
        )
    seeds = len(reports[methods[0]].seeds)
    print(
        f"{seeds} seeds, {args.repeats} repeat(s); cumulative = each seed's unlearn() times "
        "summed over the requests, median over seeds (and repeats); F, F/ceiling and the "
        "accuracies after the last request, against the scenario's gold models"
    )


if __name__ == "__main__":
    main()
