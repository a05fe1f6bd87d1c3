"""Artifact locations relative to a SQLite store's folder, so that a store can be moved.

MLflow writes absolute paths into an experiment's artifact location (it resolves a
relative one against the current directory), so a copied `mu-bench-runs/` would read the
original's files, or none. mu-bench's SQLite experiments therefore use the scheme
`mu-bench:artifacts/<scenario>`: a path relative to the folder holding `mlflow.db`,
resolved by `StoreArtifactRepository` from the tracking URI it is given (the client's),
else from the backend store URI an `mlflow server`/`mlflow ui` process runs on, else
from the current directory. The repository is registered with MLflow through the
`mlflow.artifact_repository` entry point (so an MLflow UI started on the store reads
the files) and by `register()` in any process that opens a store.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

SCHEME = "mu-bench"
# What `mlflow server` and `mlflow ui` export to their workers: the backend store URI.
SERVER_STORE_ENV = "_MLFLOW_SERVER_FILE_STORE"


def location(relative: str) -> str:
    """The artifact location for `relative` (a path under the store's folder)."""
    return f"{SCHEME}:{relative}"


def store_folder(tracking_uri: str | None) -> Path:
    """The folder relative locations are resolved in: the SQLite database's folder."""
    for uri in (tracking_uri, os.environ.get(SERVER_STORE_ENV)):
        if uri and uri.startswith("sqlite:///"):
            return Path(uri[len("sqlite:///") :]).absolute().parent
    return Path.cwd()


def resolve(artifact_uri: str, tracking_uri: str | None = None) -> Path:
    """The local folder a `mu-bench:` artifact URI names."""
    relative = urlparse(artifact_uri).path.lstrip("/")
    return store_folder(tracking_uri) / relative


class StoreArtifactRepository(LocalArtifactRepository):
    """A local artifact repository whose root is relative to the store's folder."""

    def __init__(
        self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
    ) -> None:
        super().__init__(resolve(artifact_uri, tracking_uri).as_uri(), tracking_uri, registry_uri)


def register() -> None:
    """Make the scheme known in this process (the entry point may not be installed yet)."""
    from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry

    _artifact_repository_registry.register(SCHEME, StoreArtifactRepository)
