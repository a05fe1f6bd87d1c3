"""`Budget`: the wall-clock budget of one timed call (`unlearn()` or a training stage).

The clock starts when the budget is made, just before the call; a method asks
`remaining()` or `expired` and should stop on its own. The harness enforces the limit
from outside the worker regardless.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


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
