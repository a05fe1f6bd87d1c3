"""`mu-bench new NAME [--dir D]`: a ready plugin package for a new method.

Writes `D/mu-bench-NAME/` (D defaults to the current folder): a pyproject with the
`mu_bench.methods` entry point, the method module (typed fields, a docstring template
for the paper, the source file and the deviations, and a working `unlearn` to replace),
a test that runs `mu_bench.testing`'s checks, and a README with the next commands. As
generated it installs (`pip install -e`), is listed by `mu-bench methods`, passes
`mu-bench check` and submits.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .app import app, out, say

NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "{name}: a machine unlearning method for mu-bench"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["mu-bench", "torch"]

[project.optional-dependencies]
test = ["pytest>=8"]

# This entry point is what `mu-bench methods` lists and `mu-bench submit {name}` runs.
[project.entry-points."mu_bench.methods"]
{name} = "{package}.method:{cls}"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

METHOD = '''\
"""`{name}`: ONE LINE SAYING WHAT IT DOES.

Source: AUTHORS, "TITLE", VENUE YEAR (arXiv ID); the code is OWNER/REPOSITORY,
`path/to/file.py` (`function`), at commit ABCDEF.

Algorithm: what `unlearn` does, step by step, with the paper's defaults (the field
defaults below) and where each comes from.

Presets per setting: the values the paper runs per dataset and forget rule, each with
the file and line it came from (`presets` below); where a paper gives none, say so.

Deviations, each with its reason: none yet. (The template below is a plain
"forget-then-repair" baseline, gradient ascent on the forget set and then fine-tuning on
the retain set; replace it with your method.)
"""

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mu_bench.api import Method, Reads, UnlearnTask


class {cls}(Method):
    """ONE LINE FOR `mu-bench methods` ({name})."""

    # Which sets the worker hands over: "none", "forget", "retain" or "both". Touching
    # another raises DataAccessError.
    reads: ClassVar[Reads] = "both"
    # Values for a setting, over the field defaults: {{"digits": {{...}}, "cifar10-class":
    # {{...}}}}; `--param` wins over both, `--no-preset` ignores them.
    presets: ClassVar[dict] = {{}}

    # Hyperparameters: typed fields with the paper's defaults (`--param name=value`).
    forget_epochs: int = Field(1, ge=0, description="gradient-ascent passes over the forget set")
    epochs: int = Field(3, ge=0, description="fine-tuning passes over the retain set")
    lr: float = Field(0.01, gt=0, description="SGD learning rate")
    batch_size: int = Field(64, ge=1)

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        model = task.model  # a private copy of the original, in eval mode, on task.device
        opt = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9)
        model.train()
        passes = [(task.forget, -1.0)] * self.forget_epochs + [(task.retain, 1.0)] * self.epochs
        for split, sign in passes:
            # task.generator makes each seed its own draw, and a seed repeatable.
            for x, y in split.batches(self.batch_size, generator=task.generator):
                opt.zero_grad(set_to_none=True)
                (sign * F.cross_entropy(model(x), y)).backward()
                opt.step()
                if task.budget.expired:  # stop on your own: the harness kills at the deadline
                    return model.eval()
        return model.eval()
'''

TEST = '''\
"""The mu-bench plugin contract, checked on a tiny scenario through the real runner
(`mu-bench check {name}` prints the same checks as a table)."""

from mu_bench.testing import parametrize_with_checks


@parametrize_with_checks(["{name}"])
def test_mu_bench_contract(check):
    check()
'''

README = """\
# {dist}

`{name}`: a machine unlearning method for [mu-bench](https://github.com/).

```sh
pip install -e .                  # next to mu-bench: `mu-bench methods` lists {name}
mu-bench check {name}             # the plugin contract, on a tiny scenario, in seconds
mu-bench submit {name}            # run it on the default scenario and record it
mu-bench submit {name} -s digits-class3 --param lr=0.05
mu-bench leaderboard
pytest                            # the same checks as tests (pip install -e '.[test]')
```

The method lives in `src/{package}/method.py`. Fill in its docstring (the paper, the
source file it follows, every deviation with its reason), then replace `unlearn` with
yours. The contract (what a task holds, `reads`, presets, budgets, seeds) is in
mu-bench's `docs/writing-a-method.md`.
"""


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="The method's name, e.g. my-method.")],
    folder: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--dir", help="Where to create the package folder (default: here)."),
    ] = None,
) -> None:
    """Create a plugin package for a new method: pyproject with the entry point, the
    method module, a test that runs the checks, a README."""
    from .. import registry

    if not NAME.fullmatch(name):
        raise UsageError(
            f"method name '{name}' is not valid: lower-case letters and digits, words joined "
            "by single hyphens, starting with a letter (e.g. my-method)"
        )
    if name in registry.discover():
        entry = registry.get(name)
        raise UsageError(
            f"method name '{name}' is already registered by {entry.distribution} "
            f"{entry.version}: choose another name"
        )
    root = Path(folder or ".").expanduser()
    if folder is not None and not root.is_dir():
        raise UsageError(f"--dir {folder}: folder {root.absolute()} does not exist")
    dist = f"mu-bench-{name}"
    target = root / dist
    if target.exists():
        raise UsageError(f"{target.absolute()} already exists: remove it or give another --dir")
    words = name.split("-")
    values = {
        "name": name,
        "dist": dist,
        "package": "mubench_" + "_".join(words),
        "cls": "".join(w.capitalize() for w in words),
    }
    files = {
        "pyproject.toml": PYPROJECT,
        f"src/{values['package']}/__init__.py": '"""{name} for mu-bench."""\n',
        f"src/{values['package']}/method.py": METHOD,
        "tests/test_contract.py": TEST,
        "README.md": README,
    }
    for relative, template in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    say(f"created {target.absolute()}")
    out.print(
        f"next:\n  pip install -e {target}\n  mu-bench check {name}\n  mu-bench submit {name}",
        markup=False,
    )
