"""Preset files: hyperparameters with their provenance, as `mu-bench tune` writes them and
`mu-bench submit --preset` reads them.

A preset file is one JSON document::

    {"format": "mu-bench-preset/1", "name": "finetune-digits-class3", "method": "finetune",
     "params": {"lr": 0.02, "epochs": 4},
     "provenance": {"source": "fair-tuning", "study": ..., "trials": 20,
                    "objective": {...}, "tuning_set": {...}, "evaluation_set": {...}},
     "trials": [...]}

`--preset` takes a path to such a file, or a name: `$MU_BENCH_HOME/presets/NAME.json`
(where `tune` writes by default), else the presets shipped in `mu_bench/presets/` (the
built-in methods' fair-tuned presets, named in their `preset_sources`).

Where a submission's parameters came from (`params_source`, on the board):
`defaults` (the fields' defaults), `preset` (a built-in preset a paper gave or that was
picked by hand), `fair-tuning` (a preset from `tune`, built-in or a file), `user` (a
preset file not from `tune`); `+user` is appended when `--param` changes any value.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..paths import home

FORMAT = "mu-bench-preset/1"
FAIR = "fair-tuning"


def user_folder() -> Path:
    """Where `tune` writes presets by default and `--preset NAME` looks first."""
    return home() / "presets"


def builtin_names() -> list[str]:
    folder = resources.files("mu_bench") / "presets"
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def _parse(text: str, origin: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"preset {origin} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UsageError(f"preset {origin} is not a mu-bench preset (needs format '{FORMAT}')")
    for key, kind in (("method", str), ("params", dict), ("provenance", dict)):
        if not isinstance(doc.get(key), kind):
            raise UsageError(f"preset {origin}: '{key}' is missing or not a {kind.__name__}")
    return doc


def load_builtin(name: str) -> dict[str, Any]:
    path = resources.files("mu_bench") / "presets" / f"{name}.json"
    return _parse(path.read_text(), f"<built-in {name}>")


def load(ref: str) -> dict[str, Any]:
    """A preset by path or by name (the user's folder, then the built-ins)."""
    path = Path(ref)
    if ref.endswith(".json") or path.is_file():
        if not path.is_file():
            raise UsageError(f"preset file {ref} does not exist")
        return _parse(path.read_text(), str(path))
    mine = user_folder() / f"{ref}.json"
    if mine.is_file():
        return _parse(mine.read_text(), str(mine))
    names = builtin_names()
    if ref in names:
        return load_builtin(ref)
    from ..errors import did_you_mean

    found = sorted({p.stem for p in user_folder().glob("*.json")} | set(names))
    raise UsageError(
        f"unknown preset '{ref}'.{did_you_mean(ref, found)} Presets: "
        f"{', '.join(found) or '(none)'}; or give a path to a .json file (`mu-bench tune` "
        "writes them)."
    )
