"""The one YAML helper: safe loading (C-accelerated when available) and stable dumping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mvctl.errors import OperationalError

# PyYAML is imported on first use: a rollback reads only JSON-bodied tags and never pays
# for it.


def loads(text: str, source: str = "<text>") -> Any:
    import yaml

    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - the loader is a SafeLoader
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
    import yaml

    return yaml.dump(
        data,
        Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
