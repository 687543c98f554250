"""The one YAML helper: safe loading (C-accelerated when available) and stable dumping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mvctl.errors import OperationalError

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def loads(text: str, source: str = "<text>") -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - the loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise OperationalError(
            f"{source} is not valid YAML: {_one_line(exc)}", hint="fix the file's syntax"
        ) from exc


def load_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OperationalError(f"cannot read {path}: {exc.strerror}") from exc
    return loads(text, str(path))


def dumps(data: Any) -> str:
    """Block-style YAML with keys in insertion order, so diffs of written files stay small."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def _one_line(exc: yaml.YAMLError) -> str:
    return " ".join(str(exc).split())
