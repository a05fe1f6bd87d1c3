# One-command set-up on a fresh machine: `make run` and `make test` create .venv and
# install everything they need. The torch/torchvision pair is pinned here (see
# ../shared/ENVIRONMENT.md: the CPU-only torch 2.13 wheel cannot import torchvision);
# pyproject.toml keeps ranges so users and GPU machines keep their own torch.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PAIR ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true
export MU_BENCH_DISABLE_TELEMETRY := true

.PHONY: install run test test-slow postgresql chromium lint leaderboard bench clean

$(STAMP): pyproject.toml Makefile
	# bubblewrap: the worker sandbox's outer layer (see docs/sandbox.md); without it the
	# sandbox falls back to Landlock alone. Installed where we may (root with apt).
	command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; } || true
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_PAIR)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

# The main job: four methods on the embedded default scenario, then the leaderboard.
run: install
	$(BIN)/mu-bench submit noop
	$(BIN)/mu-bench submit finetune
	$(BIN)/mu-bench submit gradient-ascent
	$(BIN)/mu-bench submit retrain
	$(BIN)/mu-bench leaderboard

# The reference leaderboard: every built-in method on both digits scenarios, 8 seeds each
# (the scenarios' default), in a store of its own (mu-bench-runs/reference/); writes
# docs/leaderboard.md and the README's copy. 2 min 27 s on this 2-core CPU with the two
# scenarios already prepared (stop 20), plus their prepare on a cold cache.
leaderboard: install
	$(BIN)/python -m mu_bench.leaderboard.reference

# Two test processes (pytest-xdist), each test file in one of them (module fixtures run
# once); they share one prepared-artifact cache (tests/conftest.py). 9 min 9 s on this
# 2-core machine (stop 23, a slow day; 6 to 9 minutes in earlier stops); the slow suite, one process,
# about 30 minutes.
test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=25

# The slow suite starts a real PostgreSQL (Debian's package; CI runs as root on a clean
# machine), a real MLflow server on it and a Dask cluster, all on 127.0.0.1, and opens
# the MLflow UI in headless Chromium.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql; }

# The browser test of the MLflow UI (tests/test_ui_browser.py) drives Debian's chromium.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

test-slow: install postgresql chromium
	$(BIN)/pytest -q -m slow --durations=25

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) mu-bench-runs .pytest_cache .ruff_cache
