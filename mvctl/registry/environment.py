"""The environment a version was trained in: interpreter, platform, packages, lockfile."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvctl.common import yamlio
from mvctl.errors import OperationalError

# The largest lockfiles (conda-lock, uv and poetry locks of big projects) are a few MiB.
MAX_LOCKFILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Lockfile:
    path: str
    sha256: str


@dataclass(frozen=True)
class Environment:
    python: str
    platform: str
    packages: dict[str, str] = field(default_factory=dict)
    lockfile: Lockfile | None = None


def normalise(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_packages() -> dict[str, str]:
    """Every distribution on sys.path. Wheel installs are read from their ``.dist-info``
    directory names (``name-version.dist-info``, PEP 427), which is ten times faster than
    parsing each METADATA file; anything else falls back to importlib.metadata."""
    import sys
    from importlib import metadata

    found: dict[str, str] = {}
    for entry in sys.path:
        base = Path(entry or ".")
        if not base.is_dir():
            continue
        try:
            names = [p.name for p in base.iterdir()]
        except OSError:
            continue
        for name in names:
            stem = name.removesuffix(".dist-info")
            if stem != name and stem.count("-") == 1:
                dist, version = stem.split("-")
                found.setdefault(normalise(dist), version)
            elif name.endswith((".dist-info", ".egg-info")):
                try:
                    meta = metadata.Distribution.at(base / name)
                    if meta.metadata["Name"]:
                        found.setdefault(normalise(meta.metadata["Name"]), meta.version)
                except (OSError, ValueError):
                    continue
    return dict(sorted(found.items()))


def capture(lock_path: Path | None = None, lock_display: str | None = None) -> Environment:
    """The running interpreter's environment, or the pins of ``lock_path`` when given."""
    python = platform.python_version()
    plat = platform.platform()
    if lock_path is None:
        return Environment(python, plat, installed_packages())
    try:
        if lock_path.stat().st_size > MAX_LOCKFILE_BYTES:
            raise OperationalError(
                f"lockfile {lock_path} is larger than {yamlio.size_words(MAX_LOCKFILE_BYTES)}",
                hint="give the environment's lockfile, not another file",
            )
        data = lock_path.read_bytes()
    except OSError as exc:
        raise OperationalError(f"cannot read lockfile {lock_path}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OperationalError(
            f"lockfile {lock_path} is not UTF-8 text (byte {exc.start})",
            hint="give the environment's lockfile, saved as UTF-8",
        ) from None
    pins = parse_lockfile(lock_path.name, text)
    return Environment(
        python,
        plat,
        dict(sorted(pins.items())),
        Lockfile(lock_display or lock_path.as_posix(), hashlib.sha256(data).hexdigest()),
    )


def parse_lockfile(filename: str, text: str) -> dict[str, str]:
    """Pins of a requirements, uv/poetry/pdm, Pipfile or conda lock, keyed by normalised name."""
    lower = filename.lower()
    try:
        if lower.endswith(".lock") and lower != "pipfile.lock":
            # uv/poetry/pdm locks are TOML; rye's requirements.lock is requirements format.
            try:
                return _toml_packages(text)
            except tomllib.TOMLDecodeError:
                return _requirements(text)
        if lower == "pipfile.lock":
            return _pipfile(text)
        if lower.endswith((".yml", ".yaml")):
            return _conda(yamlio.loads(text, filename, MAX_LOCKFILE_BYTES))
    except RecursionError:
        raise OperationalError(f"cannot parse lockfile {filename}: nested too deeply") from None
    except (tomllib.TOMLDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OperationalError(f"cannot parse lockfile {filename}: {exc}") from exc
    return _requirements(text)


_REQ_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;\\#]+)")


def _requirements(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue
        match = _REQ_RE.match(line)
        if match:
            pins[normalise(match[1])] = match[2]
    return pins


def _toml_packages(text: str) -> dict[str, str]:
    doc = tomllib.loads(text)
    return {
        normalise(str(pkg["name"])): str(pkg["version"])
        for pkg in doc.get("package", [])
        if "name" in pkg and "version" in pkg
    }


def _pipfile(text: str) -> dict[str, str]:
    doc = json.loads(text)
    pins: dict[str, str] = {}
    for section in ("default", "develop"):
        for name, spec in doc.get(section, {}).items():
            version = str(spec.get("version", "")).lstrip("=")
            if version:
                pins[normalise(name)] = version
    return pins


def _conda(doc: Any) -> dict[str, str]:
    pins: dict[str, str] = {}
    if not isinstance(doc, dict):
        raise ValueError("not a conda environment or lock file")
    if isinstance(doc.get("package"), list):  # conda-lock
        for pkg in doc["package"]:
            pins[normalise(str(pkg["name"]))] = str(pkg["version"])
        return pins
    for dep in doc.get("dependencies", []):
        if isinstance(dep, str):
            parts = re.split(r"==?", dep.split("::")[-1])
            if len(parts) >= 2 and parts[1]:
                pins[normalise(parts[0].strip())] = parts[1].strip()
        elif isinstance(dep, dict):
            pins.update(_requirements("\n".join(dep.get("pip", []))))
    return pins
