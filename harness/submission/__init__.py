"""A submission in plain stages, each taking and returning plain data:

    plan      (plan.py)      validated request: scenario, method, parameters, seeds, budget
    prepare   (prepare.py)   artifacts: data, split, original + gold models, the reference
    execute   (execute.py)   the training stage (training_stage.py), the seeds through an
                             executor, the returned weights validated: the outcomes
    evaluate  (evaluate.py)  outcomes -> the report
    figures   (mu_bench.leaderboard.figures)
    record    (mu_bench.leaderboard.store)

A scenario's `[stream]` runs its requests one after another (stream.py); its `[family]`
runs each forget set as its own submission and combines them into one report
(family.py).

`pipeline.run` composes plan's result through evaluate (and figures) for callers that
need no store: the reference leaderboard, tests, benchmarks. The CLI composes the
stages itself, record included.
"""
