"""The distribution as users get it: a wheel and an sdist holding every module and the
scenario files, a wheel that runs installed on its own (not editable), no import cycles
between mu-bench's modules, and built-in methods that use only the public API."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SOURCES = {
    "mu_bench": "harness",
    "mu_bench.methods": "methods",
    "mu_bench.leaderboard": "leaderboard",
}


def module_files() -> dict[str, Path]:
    """Every module of the three source folders by its import name."""
    found = {}
    for name, folder in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([name, *parts])] = path
    # `mu_bench` itself owns harness/; its two sub-folders are listed under their own names
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The mu-bench modules `module` imports at run time, lazily (inside functions)
    included and `if TYPE_CHECKING:` blocks excluded."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()

    def resolve(name: str) -> str | None:
        while name and name not in known:  # `from pkg import attr`: the module is pkg
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mu_bench"):
                    out.add(resolve(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("mu_bench"):
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    out.add(resolve(full) if full in known else resolve(target))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out.discard(None)
    out.discard(module)
    return out


def test_no_import_cycles_lazy_imports_included():
    files = module_files()
    graph = {m: imports_of(m, p, set(files)) for m, p in files.items()}
    # A package's __init__ runs before any of its modules: importing `a.b` imports `a`.
    for m in list(graph):
        parent = m.rpartition(".")[0]
        if parent in graph and parent != "mu_bench":
            graph[m].add(parent)
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def strongconnect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            strongconnect(v)
    assert cycles == [], cycles


def test_builtin_methods_import_only_the_public_api():
    files = module_files()
    for module, path in files.items():
        if not module.startswith("mu_bench.methods."):
            continue
        used = imports_of(module, path, set(files))
        internal = {m for m in used if m != "mu_bench.api" and not m.startswith("mu_bench.methods")}
        assert not internal, f"{module} imports {sorted(internal)}"


def test_the_public_api_exports_what_its_all_says():
    import mu_bench.api as api

    for name in api.__all__:
        assert getattr(api, name) is not None
    for needed in ("Method", "UnlearnTask", "TrainTask", "Split", "Budget", "fit"):
        assert needed in api.__all__


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    for kind in ("--wheel", "--sdist"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "build",
                kind,
                "--no-isolation",
                "--outdir",
                str(out),
                str(ROOT),
            ],
            check=True,
            capture_output=True,
        )
    return out


def test_wheel_and_sdist_hold_every_module_and_the_scenarios(dist):
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for module, path in module_files().items():
        relative = path.relative_to(ROOT)
        inside = Path(*module.split(".")) / ("__init__.py" if path.name == "__init__.py" else "")
        if path.name != "__init__.py":
            inside = inside.with_suffix(".py")
        assert inside.as_posix() in in_wheel, inside
        assert relative.as_posix() in in_sdist, relative
    scenarios = sorted(p.name for p in (ROOT / "harness" / "scenarios").glob("*.toml"))
    assert scenarios and all(f"mu_bench/scenarios/{s}" in in_wheel for s in scenarios)
    assert "mu_bench/py.typed" in in_wheel
    assert not any(n.startswith(("harness/", "methods/", "leaderboard/")) for n in in_wheel)


def test_the_wheel_runs_installed_on_its_own(dist, tmp_path):
    """Installed without deps into a scratch folder (not editable), every module imports
    from there, `methods` lists the built-ins and a one-seed submit is recorded."""
    (wheel,) = dist.glob("*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
        check=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "MU_BENCH_HOME": str(tmp_path / "home")}
    modules = sorted(m for m in module_files() if m != "mu_bench.__main__")  # it runs the CLI
    code = (
        "import importlib, sys, json\n"
        f"mods = {modules!r}\n"
        "for m in mods:\n"
        "    mod = importlib.import_module(m)\n"
        f"    assert mod.__file__.startswith({str(target)!r}), (m, mod.__file__)\n"
        "print(len(mods))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == len(modules)
    entry = subprocess.run(
        [sys.executable, "-c", "import mu_bench.__main__"], env=env, capture_output=True, text=True
    )
    assert entry.returncode == 2 and "Usage" in entry.stdout + entry.stderr  # no command given
    run = [sys.executable, "-m", "mu_bench"]
    listed = subprocess.run([*run, "methods", "--json"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert {"finetune", "sisa", "noop"} <= {r["name"] for r in json.loads(listed.stdout)}
    proc = subprocess.run(
        [*run, "submit", "noop", "--seeds", "1", "--no-figures", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "ok" and doc["run_id"]
