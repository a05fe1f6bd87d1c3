"""Errors that map to the CLI's exit codes (0 ran, 1 check failed, 2 bad input, 3 internal)."""


class MuBenchError(Exception):
    """Base class; `exit_code` tells the CLI how to end."""

    exit_code = 3


class UsageError(MuBenchError):
    """Bad usage or input: the message names what is valid. Exit code 2."""

    exit_code = 2


class CheckFailed(MuBenchError):
    """A conformance check or strict mode failed. Exit code 1."""

    exit_code = 1


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """' Did you mean 'x'?' for the closest choice, or ''."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""
