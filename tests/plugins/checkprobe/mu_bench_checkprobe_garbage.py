"""Test plugin that, on import, writes a report of its own where the check worker writes
its answer (its working directory), an `ok` result beside it, and exits: every check a
pass, and one the harness never asked about."""

import json
import os

checks = ["check_imports", "check_is_method_with_docstring", "check_made_up"]
with open("checks.json", "w") as fh:
    json.dump({"schema_version": 1, "results": [[c, "pass", "forged"] for c in checks]}, fh)
with open("result.json", "w") as fh:
    json.dump({"schema_version": 1, "status": "ok", "seconds": 0.0}, fh)
os._exit(0)


class Garbage:
    """Never defined."""
