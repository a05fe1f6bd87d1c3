"""Package discovery for the three source folders, which install under one import name
(`harness/` -> `mu_bench`, `methods/` -> `mu_bench.methods`, `leaderboard/` ->
`mu_bench.leaderboard`): every package under them is found, so a new module or folder
ships without editing a list. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

ROOTS = {
    "mu_bench": "harness",
    "mu_bench.methods": "methods",
    "mu_bench.leaderboard": "leaderboard",
}


def packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(folder)]
    return found


setup(packages=packages(), package_dir=ROOTS)
