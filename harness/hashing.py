"""Content hashes of JSON-able payloads: scenario hashes and artifact cache keys."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def content_hash(payload: Any) -> str:
    """The SHA-256 (hex) of `payload` as sorted JSON."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def key_of(payload: Any) -> str:
    """A cache entry key: the first 32 hex digits of `content_hash(payload)`."""
    return content_hash(payload)[:32]
