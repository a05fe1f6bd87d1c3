"""Reading what a worker wrote: every such file is untrusted input.

A worker owns its `output/` folder, so a file there may be a symbolic link to a gold
model, a hard link to a cache file, a fifo that blocks the reader, a device, or a file
of any size. `read_output` returns a file's bytes only when it is a regular file with a
single link, not larger than its cap, opened without following links and without
blocking; anything else raises `UntrustedOutput` with the reason, which the harness
turns into an `invalid` seed (never a harness error).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UntrustedOutput(ValueError):
    """A worker's output file that the harness refuses to read."""


def read_output(path: Path, max_bytes: int) -> bytes:
    """The bytes of the worker's file `path` (see the module docstring)."""
    name = Path(path).name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:  # ELOOP: a symbolic link
        raise UntrustedOutput(f"{name} is not a regular file ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedOutput(f"{name} is not a regular file")
        if info.st_nlink != 1:
            raise UntrustedOutput(f"{name} has {info.st_nlink} links (a link to another file?)")
        if info.st_size > max_bytes:
            raise UntrustedOutput(f"{name} is {info.st_size} bytes, over its {max_bytes} cap")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise UntrustedOutput(f"{name} grew past its {max_bytes} cap while read")
        return data
    finally:
        os.close(fd)


def check_tree(root: Path, max_files: int = 100_000) -> str | None:
    """Why the folder `root` (a training stage's `state/`) is not made of plain folders
    and regular single-link files, or None when it is."""
    count = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            count += 1
            if count > max_files:
                return f"{root.name}/ holds more than {max_files} entries"
            st = os.lstat(os.path.join(folder, name))
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                rel = os.path.relpath(os.path.join(folder, name), root)
                return f"{root.name}/{rel} is not a regular single-link file"
    return None
