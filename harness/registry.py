"""Method discovery through the `mu_bench.methods` entry-point group.

After pluggy and lm-evaluation-harness: names, distributions and versions come from
package metadata and one-line summaries from the plugin's source (parsed with `ast`;
neither the module nor its package is imported: `find_spec_unimported`); only a worker
imports a plugin. The same name offered by two distributions is an error naming both;
an unknown name gets the valid names and a "did you mean".
"""

from __future__ import annotations

import ast
import importlib
import sys
from dataclasses import dataclass
from importlib import metadata
from importlib.machinery import ModuleSpec

from .errors import UsageError, did_you_mean

GROUP = "mu_bench.methods"


@dataclass(frozen=True)
class MethodEntry:
    name: str
    value: str  # "package.module:ClassName"
    distribution: str
    version: str

    @property
    def module(self) -> str:
        return self.value.partition(":")[0]

    @property
    def attr(self) -> str:
        return self.value.partition(":")[2]

    def summary(self) -> str:
        """First line of the class docstring, read from source without importing the module."""
        try:
            spec = find_spec_unimported(self.module)
            if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                return ""
            with open(spec.origin, encoding="utf-8") as fh:
                tree = ast.parse(fh.read(), filename=spec.origin)
        except Exception as exc:  # a broken plugin must not break the listing
            return f"(warning: source unreadable: {type(exc).__name__}: {exc})"
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == self.attr:
                doc = ast.get_docstring(node) or ""
                return doc.strip().splitlines()[0] if doc.strip() else ""
        return f"(warning: class {self.attr} not found in {self.module})"

    def load(self) -> type:
        """Import the plugin and return its Method class; failures are clear usage errors."""
        try:
            module = importlib.import_module(self.module)
            return getattr(module, self.attr)
        except Exception as exc:
            raise UsageError(
                f"method '{self.name}' (from {self.distribution} {self.version}) failed to "
                f"import {self.value}: {type(exc).__name__}: {exc}"
            ) from exc


def find_spec_unimported(module: str) -> ModuleSpec | None:
    """Where `module` would be loaded from, found without running any of its code, nor
    its parent packages' (`importlib.util.find_spec` of "pkg.mod" imports "pkg": a
    plugin's `__init__` would run in the harness): each dotted prefix is looked up with
    the import system's finders (`sys.meta_path`: files, editable installs) in its
    parent's search locations, as the import system does, but nothing is executed."""
    path, spec = None, None
    parts = module.split(".")
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path) if find is not None else None
            if spec is not None:
                break
        if spec is None:
            return None
        path = spec.submodule_search_locations
        if path is None and i < len(parts) - 1:
            return None  # a module, not a package, with a submodule named
    return spec


def discover() -> dict[str, MethodEntry]:
    """All registered methods by name; raises on a name offered by two distributions."""
    found: dict[str, MethodEntry] = {}
    for ep in metadata.entry_points(group=GROUP):
        dist = ep.dist
        entry = MethodEntry(
            ep.name,
            ep.value,
            dist.metadata["Name"] if dist else "?",
            dist.version if dist else "?",
        )
        other = found.get(ep.name)
        if other is None:
            found[ep.name] = entry
        elif _norm(other.distribution) != _norm(entry.distribution):
            raise UsageError(
                f"method name '{ep.name}' is registered twice: by {other.distribution} "
                f"{other.version} ({other.value}) and by {entry.distribution} {entry.version} "
                f"({entry.value}). Uninstall one of them."
            )
    return dict(sorted(found.items()))


def _norm(dist: str) -> str:
    return dist.lower().replace("_", "-").replace(".", "-")


def get(name: str) -> MethodEntry:
    methods = discover()
    if name not in methods:
        raise UsageError(
            f"unknown method '{name}'.{did_you_mean(name, list(methods))} "
            f"Valid methods: {', '.join(methods) or '(none installed)'}"
        )
    return methods[name]
