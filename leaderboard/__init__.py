"""The leaderboard: an MLflow store (one experiment per scenario, one parent run per
submission, nested runs per seed), ranking and tables."""
