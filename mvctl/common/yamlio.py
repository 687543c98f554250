"""The one YAML helper: safe loading (C-accelerated when available) and stable dumping."""

from __future__ import annotations

import sys
from collections.abc import Hashable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mvctl.errors import OperationalError

if TYPE_CHECKING:
    import yaml

# PyYAML is imported on first use: a rollback reads only JSON-bodied tags and never pays
# for it.

# YAML that mvctl reads is config, manifests (a weights directory lists its files), params
# and lock files: kilobytes, rarely megabytes. The cap keeps a stray data file, or a crafted
# registry commit, from taking seconds and gigabytes to load. Callers may pass a lower one.
MAX_BYTES = 16 * 1024 * 1024


class _Refused(Exception):
    """Raised inside the loader; ``loads`` adds the source and turns it into a one-liner."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@cache
def _strict_loader() -> type[yaml.SafeLoader]:
    """The safe loader (C-accelerated when available) that also refuses a duplicate key,
    which PyYAML would silently resolve to the last value, and any alias or merge key: an
    alias bomb composes in linear time but constructs in exponential time."""
    import yaml

    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[valid-type,misc]
        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            # The composer hands an alias over as the very node it refers to, so a node
            # constructed (or being constructed) before is an alias.
            if node in self.constructed_objects or node in self.recursive_objects:
                raise _Refused(0, "YAML aliases (*name) are not allowed")
            try:
                return super().construct_object(node, deep)
            except ValueError as exc:  # an int past Python's digit limit, a bad timestamp
                raise _Refused(node.start_mark.line + 1, _bad_value(exc)) from None

        def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
            if not isinstance(node, yaml.MappingNode):
                return super().construct_mapping(node, deep)  # type: ignore[no-any-return]
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Refused(line, "YAML merge keys (<<) are not allowed")
                key = self.construct_object(key_node, deep)
                if not isinstance(key, Hashable):
                    raise _Refused(line, "a mapping key must be a plain value")
                if key in mapping:
                    first = next(
                        k.start_mark.line + 1
                        for k, _ in node.value
                        if k is not key_node and self.constructed_objects.get(k) == key
                    )
                    raise _Refused(line, f"duplicate key {key!r} (first on line {first})")
                mapping[key] = self.construct_object(value_node, deep)
            return mapping

    return StrictLoader


def _bad_value(exc: ValueError) -> str:
    if "integer string conversion" in str(exc):
        limit = sys.get_int_max_str_digits()
        return f"an integer of more than {limit} digits, more than mvctl reads"
    return f"a value that cannot be read: {_one_line(exc)}"


def loads(text: str, source: str = "<text>", max_bytes: int = MAX_BYTES) -> Any:
    """Safe-load ``text``; a duplicate key, an alias, a syntax error or more than
    ``max_bytes`` of text is an OperationalError that names ``source`` (and the line)."""
    import yaml

    if len(text) > max_bytes // 4 and len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise _too_big(source, max_bytes)
    try:
        return yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader
    except RecursionError:
        raise OperationalError(
            f"{source} is nested too deeply to read", hint="fix the file and retry"
        ) from None
    except _Refused as exc:
        line = exc.line or _first_alias_line(text)
        raise OperationalError(
            f"{source}:{line}: {exc.message}", hint="fix the file and retry"
        ) from None
    except yaml.YAMLError as exc:
        raise OperationalError(
            f"{source} is not valid YAML: {_one_line(exc)}", hint="fix the file's syntax"
        ) from exc


def _first_alias_line(text: str) -> int:
    """Where the first alias is: its node is the anchored one, so only the events know."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent) and event.start_mark is not None:
            return int(event.start_mark.line) + 1
    return 1


def line_of(text: str, path: tuple[str | int, ...]) -> int | None:
    """The line of the entry at ``path`` (mapping keys, sequence indexes) in ``text``, or of
    the deepest part of it that exists. Composes the node tree, so meant for error paths."""
    import yaml

    node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if node is None or node.start_mark is None:
        return None
    line = int(node.start_mark.line) + 1
    for part in path:
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            at = node
        elif isinstance(node, yaml.MappingNode):
            pairs = [(k, v) for k, v in node.value if getattr(k, "value", None) == str(part)]
            if not pairs:
                break
            at, node = pairs[0]
        else:
            break
        line = int(at.start_mark.line) + 1 if at.start_mark is not None else line
    return line


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """A user's text file, refused before it is read when larger than ``max_bytes``, and
    refused when it is not UTF-8: one-line OperationalErrors, never a traceback."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_big(str(path), max_bytes)
        data = path.read_bytes()
    except OSError as exc:
        raise OperationalError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > max_bytes:  # it grew since stat()
        raise _too_big(str(path), max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OperationalError(
            f"{path} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})",
            hint="save the file as UTF-8 and retry",
        ) from None


def load_file(path: Path, max_bytes: int = MAX_BYTES) -> Any:
    return loads(read_text(path, max_bytes), str(path), max_bytes)


def size_words(size: int) -> str:
    """A cap in words: 1 MiB, 512 KiB."""
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} bytes"


def _too_big(source: str, max_bytes: int) -> OperationalError:
    return OperationalError(
        f"{source} is larger than {size_words(max_bytes)}, the most mvctl reads",
        hint="point mvctl at the small summary file, not at data",
    )


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
