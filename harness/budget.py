"""`Budget`: the wall-clock budget of one timed call (`unlearn()` or a training stage).

The clock starts when the budget is made, just before the call; a method asks
`remaining()` or `expired` and should stop on its own. The harness enforces the limit
from outside the worker regardless. `parse_budget` reads a `--budget` (or a method's
`default_budget`): seconds or a share of the retrain time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .errors import UsageError


@dataclass
class Budget:
    seconds: float
    start: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed)

    @property
    def expired(self) -> bool:
        return self.elapsed >= self.seconds


def parse_budget(text: str | None) -> str | float | None:
    if text is None:
        return None
    t = text.strip().lower()
    try:
        if t.endswith("%"):
            value = float(t[:-1])
            if value <= 0:
                raise ValueError
            return f"{value}%"
        value = float(t.removesuffix("s"))
        if value <= 0:
            raise ValueError
        return value
    except ValueError:
        raise UsageError(
            f"--budget '{text}' is not valid: give seconds (e.g. 30) or a percentage of the "
            "retrain time (e.g. 20%)"
        ) from None
