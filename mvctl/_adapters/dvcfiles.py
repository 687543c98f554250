"""DVC's files as text: ``.dvc`` files, ``dvc.yaml`` artifacts, a ``.dvc/config`` remote
and object ids, parsed without importing DVC (a serving host reads them from untrusted
registry commits; ``check`` and ``register`` from the work tree). Everything here is
validated: what DVC would join into a path, or write into a config line, never comes
through as given."""

from __future__ import annotations

import re
from typing import Any

from mvctl.common import yamlio
from mvctl.errors import OperationalError, UsageError
from mvctl.formats.names import redacted_url


def outs(text: str, where: str) -> list[Any]:
    """The ``outs`` list of a ``.dvc`` file (empty when it has none or is not a mapping)."""
    data = yamlio.loads(text, where)
    found = data.get("outs") if isinstance(data, dict) else None
    return found if isinstance(found, list) else []


def single_out(text: str, where: str) -> dict[str, Any] | None:
    """The one output a ``.dvc`` file for a single path records, else None."""
    found = outs(text, where)
    return found[0] if len(found) == 1 and isinstance(found[0], dict) else None


def artifacts(text: str, where: str) -> dict[str, Any]:
    """``dvc.yaml``'s ``artifacts:`` section: artifact name -> its declaration."""
    data = yamlio.loads(text, where)
    found = data.get("artifacts") if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({' '.join(str(cause).split())})"
    return text or type(exc).__name__


OBJECT_ID_RE = re.compile(r"[0-9a-f]{32}(\.dir)?")
REMOTE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Schemes of DVC's remote types; anything else in a committed config is refused.
_SCHEMES = frozenset(
    "s3 gs gcs azure az ssh hdfs webhdfs http https webdav webdavs oss gdrive file".split()  # noqa: SIM905
)


def check_object_id(value: object, what: str) -> str:
    """A DVC object id (md5, '.dir' for a directory) and nothing else: DVC joins it into a
    path, so an id with a '/' would name any file on the host."""
    if not isinstance(value, str) or not OBJECT_ID_RE.fullmatch(value):
        raise OperationalError(f"{what} has an invalid object id {_shown(value)}")
    return value


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 50 else text[:47] + "..."


def check_remote_url(url: str, what: str) -> str:
    """A remote URL a host may use: a known DVC scheme or an absolute local path, with
    nothing that could end a config line or start an option."""
    if (
        not url
        or len(url) > 2048
        or url.startswith("-")
        or any(c in url for c in "\n\r\0\"'#;[]")
        or url != url.strip()
    ):
        raise OperationalError(f"{what} has an invalid DVC remote URL {_shown_url(url)}")
    scheme, sep, rest = url.partition("://")
    if sep:
        if scheme.lower() not in _SCHEMES or not rest:
            raise OperationalError(f"{what} has a DVC remote of unknown kind {_shown_url(url)}")
        return url
    if not url.startswith("/") or ".." in url.split("/"):
        raise OperationalError(
            f"{what} has a DVC remote that is not an absolute path or URL: {_shown_url(url)}",
            hint="on the host, name the store with --dvc-remote",
        )
    return url


def _shown_url(url: str) -> str:
    return _shown(redacted_url(url))


def check_dvc_remote(remote: str) -> str:
    """``--dvc-remote``: a remote name of the host's DVC config, or a URL (or absolute
    path) that replaces the registry's. Usage input: a bad one is a UsageError."""
    if "://" in remote or remote.startswith("/"):
        try:
            return check_remote_url(remote, "--dvc-remote")
        except OperationalError as exc:
            raise UsageError(exc.message, hint="give a DVC remote URL or absolute path") from None
    if not REMOTE_NAME_RE.fullmatch(remote):
        raise UsageError(
            f"invalid --dvc-remote {_shown_url(remote)}",
            hint="give a remote name of your DVC config, or a URL",
        )
    return remote


def remote_from_config(text: str, what: str) -> tuple[str, str]:
    """The default remote (name, url) of a registry's committed ``.dvc/config``. Nothing
    else in it applies on a host (cache and site-cache dirs, remote options, core flags)."""
    from configobj import ConfigObj, ConfigObjError  # type: ignore[import-untyped]

    try:
        conf = ConfigObj(text.splitlines(), interpolation=False, list_values=False)
    except (ConfigObjError, ValueError, TypeError) as exc:
        raise OperationalError(f"{what} is not a valid DVC config: {one_line(exc)}") from None
    core = conf.get("core")
    name = core.get("remote") if isinstance(core, dict) else None
    if not isinstance(name, str) or not REMOTE_NAME_RE.fullmatch(name):
        raise OperationalError(
            f"{what} names no valid default DVC remote", hint="pass --dvc-remote NAME|URL"
        )
    for section, values in conf.items():
        match = re.fullmatch(r'\s*remote\s*"(.*)"\s*', str(section))
        if match and match[1] == name and isinstance(values, dict):
            url = values.get("url")
            if isinstance(url, str):
                return name, check_remote_url(url, what)
    raise OperationalError(f"{what} has no URL for its default DVC remote {name!r}")


def safe_relpath(path: str) -> bool:
    parts = path.split("/")
    return (
        0 < len(path) <= 4096
        and not any(c in path for c in "\0\\")
        and all(p not in ("", ".", "..") for p in parts)
    )
