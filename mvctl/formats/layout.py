"""Where mvctl's files live in a registry repo (DESIGN.md "Files at a version's commit"),
and which files mvctl itself writes, so that nothing else spells these paths."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

CONFIG_FILE = "mvctl.yaml"
DVC_YAML = "dvc.yaml"
REGISTRY_DIR = "registry/"


def manifest_path(model: str) -> str:
    return f"{REGISTRY_DIR}{model}/manifest.yaml"


def profile_path(model: str) -> str:
    return f"{REGISTRY_DIR}{model}/profile.json"


def request_path(model: str, request_id: str) -> str:
    return f"{REGISTRY_DIR}{model}/requests/{request_id}.yaml"


def is_request_path(path: str) -> bool:
    """``registry/MODEL/requests/ID.yaml`` (the shape; names are checked by the reader)."""
    parts = path.split("/")
    return (
        len(parts) == 4
        and f"{parts[0]}/" == REGISTRY_DIR
        and parts[2] == "requests"
        and path.endswith(".yaml")
    )


def tracked_files(paths: Iterable[str]) -> list[str]:
    """What DVC writes for each tracked path: its ``.dvc`` file and the ``.gitignore``
    beside it."""
    written = []
    for given in paths:
        path = PurePosixPath(given)
        written.append(f"{path}.dvc")
        written.append(str(path.parent / ".gitignore") if str(path.parent) != "." else ".gitignore")
    return written


def written_files(model: str, tracked: Iterable[str]) -> list[str]:
    """Every file ``mvctl register`` of ``model`` may write for the ``tracked`` paths
    (weights and data): never the user's code."""
    return [manifest_path(model), profile_path(model), DVC_YAML, *tracked_files(tracked)]
