"""A content-addressed cache of directories, safe against crashes and concurrent builders.

An entry is `ROOT/<kind>/<key>/` holding its files (sub-folders too, named by their
relative path) and a `manifest.json` with every file's SHA-256. Entries are built in a
temporary sibling and renamed into place only when complete, under a file lock, so a
crash leaves no half entry that looks whole and two processes never build the same
entry twice; a hit takes no lock (an entry in place is whole and never changes). Every
load re-hashes the files: a corrupted or partial entry is removed and rebuilt, never
used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Entry:
    path: Path
    meta: dict[str, Any]
    built: bool  # True when this call built it (a cache miss)

    def file(self, name: str) -> Path:
        return self.path / name


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link a cached file where it is needed (a copy across file systems). Readers
    must not write to it: the link is the cache's own file."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def entry_dir(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def _valid(self, path: Path) -> dict[str, Any] | None:
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            for name, digest in manifest["files"].items():
                if sha256_file(path / name) != digest:
                    return None
            return manifest
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def get(self, kind: str, key: str) -> Entry | None:
        """The valid entry for (kind, key), or None (a corrupt one counts as none)."""
        path = self.entry_dir(kind, key)
        manifest = self._valid(path) if path.exists() else None
        return Entry(path, manifest["meta"], built=False) if manifest else None

    def get_or_build(self, kind: str, key: str, build: Callable[[Path], dict[str, Any]]) -> Entry:
        """The entry for (kind, key); `build(tmpdir)` writes its files and returns its meta."""
        path = self.entry_dir(kind, key)
        # A hit needs no lock: an entry is renamed into place whole and never changed
        # after, and one removed meanwhile fails `_valid` like a corrupt one.
        found = self.get(kind, key)
        if found is not None:
            return found
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if path.exists():
                manifest = self._valid(path)
                if manifest is not None:
                    return Entry(path, manifest["meta"], built=False)
                log.warning("cache entry %s is corrupt or partial; rebuilding it", path)
                shutil.rmtree(path)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            try:
                meta = build(tmp)
                files = {
                    p.relative_to(tmp).as_posix(): sha256_file(p)
                    for p in sorted(tmp.rglob("*"))
                    if p.is_file() and p != tmp / MANIFEST
                }
                manifest = {"kind": kind, "key": key, "files": files, "meta": meta}
                (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
                os.replace(tmp, path)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return Entry(path, meta, built=True)
