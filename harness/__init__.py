"""mu-bench: a benchmark and leaderboard for machine unlearning.

Data flows forward: scenario -> artifacts (original + gold models, cached) ->
outcomes (one isolated worker per method seed) -> report (metrics) -> store (MLflow).
Importing this package is cheap: torch, mlflow and scikit-learn load only where used.
"""

from importlib import metadata

try:
    __version__ = metadata.version("mu-bench")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
