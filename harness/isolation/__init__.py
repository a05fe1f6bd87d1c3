"""Isolation: how one job runs in a worker process of its own. `protocol` (the request,
result, job and outcome types every side shares), `runner` (one job: lay out its
folder, start, watch, kill, classify), `launch` (fork server or fresh interpreter, and
the sweep of leftovers), `worker` and `forkserver` (the other side), `executor` (the
seam that runs a batch of jobs and yields outcomes as they end).
"""
