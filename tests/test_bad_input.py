"""Bad input: a clear message naming what is valid, exit code 2, nothing written."""

import pytest

from .conftest import cli


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["submit", "noop", "--scenario", "nope"], "Valid scenarios"),
        (["submit", "nope"], "Valid methods"),
        (["submit", "noop", "--budget", "soon"], "--budget 'soon' is not valid"),
        (["submit", "noop", "--seeds", "0"], "at least 1"),
        (["submit", "noop", "--device", "tpu"], "valid: auto, cpu, cuda"),
        (["submit", "noop", "--tracking-uri", "sqlite:////no/such/dir/x.db"], "does not exist"),
        (["submit", "noop", "--tracking-uri", "http://127.0.0.1:9"], "no MLflow server"),
        (["submit", "noop", "--tracking-uri", "ftp://x"], "Valid forms"),
        (["leaderboard", "nope"], "no submissions for scenario"),
        (["leaderboard", "-s", "nope"], "no submissions for scenario"),
        (["leaderboard", "digits-tiny", "-s", "digits-class3"], "two scenarios given"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(args, fragment, home, tmp_path):
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not home.exists()
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


def test_unknown_option_is_a_usage_error():
    proc = cli("submit", "noop", "--nonsense")
    assert proc.returncode == 2
