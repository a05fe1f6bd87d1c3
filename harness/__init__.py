"""mu-bench: a benchmark and leaderboard for machine unlearning.

Data flows forward: scenario -> artifacts (original + gold models, cached) ->
outcomes (one isolated worker per method seed) -> report (metrics) -> store (MLflow).
Importing this package is cheap: torch, mlflow and scikit-learn load only where used.
"""

import os
from importlib import metadata

# OpenMP threads that spin while waiting make small models train 10-60x slower whenever
# the machine has other work (measured here: a 50-step MLP fine-tune took 1-12 s instead
# of 0.2 s beside a busy neighbour). Passive waiting costs little on an idle machine.
# Set before torch loads (this package is imported first by every entry point), and
# inherited by workers; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = metadata.version("mu-bench")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
