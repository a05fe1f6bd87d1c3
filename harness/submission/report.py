"""The result of one submission: per-seed outcomes and metrics, aggregates, references.

Plain data, JSON-able: the store logs `to_json()` as `report.json`, and `--json` prints
the same document. `asdict(report)` (tracebacks included) through JSON and back with
`Report.from_dict` is the same report: how the CLI hands it to its store writer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class SeedReport:
    """One seed as the leaderboard records it: its status, cost and metrics."""

    seed: int
    status: str
    unlearn_seconds: float | None = None
    wall_seconds: float | None = None
    error: str | None = None
    traceback: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    # A family of forget sets (`submission.family`): the draw of the set this seed ran on.
    forget_set: int | None = None


@dataclass(frozen=True)
class Report:
    scenario: str
    scenario_hash: str
    method: str
    distribution: str
    version: str
    params: dict[str, Any]
    preset: str | None
    budget_seconds: float
    device: str
    torch_version: str
    harness_version: str
    reads: str
    in_scope: bool
    seeds: tuple[SeedReport, ...]
    metrics: dict[str, float]
    reference: dict[str, dict[str, float]]
    notes: tuple[str, ...] = ()
    # Harness overhead, seconds: prepare, training stage, worker start-up (median),
    # evaluation, figures.
    timings: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    # The sandbox its workers ran under ("landlock+bwrap", "landlock", "bwrap"; "none":
    # unconfined, shown as unverified on the leaderboard).
    sandbox: str = "none"
    # The parameters that differ from the method's field defaults with the scenario's
    # preset applied: what `--param` (or `--no-preset`) changed. Run names and the
    # leaderboard's parameter label show them.
    overrides: dict[str, Any] = field(default_factory=dict)
    # The scenario file's text, logged beside the submission.
    scenario_toml: str = ""
    # A deletion stream (a scenario's `[stream]`): one entry per request, in order, with
    # its size, the rows deleted so far, its status and its metrics after the request
    # (`submission.stream`); empty for a one-shot submission.
    requests: tuple[dict[str, Any], ...] = ()
    # A family of forget sets (a scenario's `[family]`): one entry per set, in order,
    # with its draw, forget set, size, status and metrics (`submission.family`); the
    # report's own metrics are their means. Empty for a single forget set.
    forget_sets: tuple[dict[str, Any], ...] = ()
    # Where `params` came from (`submission.presets`) and the preset's provenance.
    params_source: str = "defaults"
    params_provenance: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        """ok (every seed ok), partial (some), or the seeds' common failure (else failed)."""
        counts = Counter(s.status for s in self.seeds)
        if counts.get("ok", 0) == len(self.seeds):
            return "ok"
        if counts.get("ok", 0):
            return "partial"
        return next(iter(counts)) if len(counts) == 1 else "failed"

    @property
    def seeds_ok(self) -> int:
        return sum(s.status == "ok" for s in self.seeds)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Report:
        """The report `asdict` gave `doc` (after a JSON round trip: lists for tuples)."""
        names = {f.name for f in fields(cls)} - {"seeds", "notes"}
        return cls(
            **{k: v for k, v in doc.items() if k in names},
            seeds=tuple(SeedReport(**s) for s in doc["seeds"]),
            notes=tuple(doc.get("notes", ())),
        )

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["status"] = self.status
        doc["seeds"] = [
            {k: v for k, v in asdict(s).items() if k != "traceback"} for s in self.seeds
        ]
        return doc
