"""Pointer files on a DVC remote: a conditional read (a validator that changes whenever
the object does) and a write, for the three kinds of remote a fleet polls cheaply.

- a folder (a local path or ``file://``): validator ``mtime_ns-size-inode``; written to a
  temporary file and renamed into place, so a reader never sees half a pointer;
- HTTP(S): ``GET`` with ``If-None-Match`` (304: unchanged), ``PUT`` to write;
- S3 (``s3://bucket/prefix``): ``get_object`` with ``IfNoneMatch`` (304), ``put_object``,
  through botocore (the ``s3`` extra brings it for dvc-s3), with the endpoint and the
  credentials DVC's remote options or the AWS environment give.

Every network call has a timeout. Whatever a store answers is untrusted: a read never
takes more than ``MAX_READ`` bytes. Credentials are taken from the caller's options or the
environment and never written anywhere or put in a message."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mvctl.errors import OperationalError, UsageError
from mvctl.formats.names import redacted_url
from mvctl.formats.pointer import MAX_BYTES

if TYPE_CHECKING:
    import urllib.request

MAX_READ = MAX_BYTES + 1  # one byte more than a pointer may have: enough to refuse it
TIMEOUT = 5.0  # seconds for each network call of a pointer read or write
DEADLINE_TIMEOUTS = 3  # a whole HTTP request (connect, headers, body): 3 timeouts at most
ABSENT = "absent"  # the validator of a pointer that is not there


class StoreUnreachable(OperationalError):
    """The pointer store did not answer (or refused us): not a statement about the pointer."""


@dataclass(frozen=True)
class Read:
    """A conditional read: ``validator`` identifies what is there now (ABSENT: nothing);
    ``body`` is None when it is the validator given (not modified) or nothing is there."""

    validator: str
    body: bytes | None

    def changed(self, since: str | None) -> bool:
        return self.validator != since


class PointerStore(Protocol):
    where: str  # for messages: the URL without any secret

    def read(self, key: str, validator: str | None) -> Read: ...

    def write(self, key: str, body: bytes) -> None: ...

    def delete(self, key: str) -> None: ...


def open_store(
    url: str, options: Mapping[str, Any] | None = None, *, timeout: float = TIMEOUT
) -> PointerStore:
    """The store at ``url`` (a remote's root: a folder, http(s)://, s3://bucket/prefix);
    ``options`` are a DVC remote's options (endpointurl, credentials, auth)."""
    if not url or url.startswith("-") or any(c in url for c in "\0\n\r"):
        raise UsageError(f"invalid pointer store {redacted_url(url)!r}")
    opts = dict(options or {})
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return HttpStore(url, opts, timeout)
    if scheme == "s3":
        return S3Store(url, opts, timeout)
    if scheme == "file":
        return FolderStore(Path(urllib.parse.urlsplit(url).path))
    if "://" in url:
        raise UsageError(
            f"pointer files cannot be kept on {redacted_url(url)}",
            hint="use a folder, an http(s):// or an s3:// DVC remote",
        )
    return FolderStore(Path(url))


def _check_key(key: str) -> str:
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts) or any(c in key for c in "\0\\\n\r?#%"):
        raise OperationalError(f"invalid pointer key {key!r}")
    return key


# --- a folder ----------------------------------------------------------------------------


class FolderStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)

    def read(self, key: str, validator: str | None) -> Read:
        path = self.root / _check_key(key)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # a planted FIFO never blocks
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            if not self.root.is_dir():
                raise StoreUnreachable(f"the pointer folder {self.root} is not there") from None
            return Read(ABSENT, None)
        except OSError as exc:
            raise StoreUnreachable(f"cannot read {path}: {exc.strerror}") from None
        if stat.S_ISDIR(os.fstat(fd).st_mode):  # os.fdopen would raise IsADirectoryError
            os.close(fd)
            raise StoreUnreachable(f"cannot read {path}: it is a directory")
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            now = f"{info.st_mtime_ns}-{info.st_size}-{info.st_ino}"
            if now == validator:
                return Read(now, None)
            try:
                return Read(now, handle.read(MAX_READ))
            except OSError as exc:  # a FIFO with nothing in it yet
                raise StoreUnreachable(f"cannot read {path}: {exc.strerror}") from None

    def write(self, key: str, body: bytes) -> None:
        path = self.root / _check_key(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(body)
                    out.flush()
                    os.fsync(out.fileno())
                Path(tmp).replace(path)
            except BaseException:
                with contextlib.suppress(OSError):
                    Path(tmp).unlink()
                raise
        except OSError as exc:
            raise StoreUnreachable(f"cannot write {path}: {exc.strerror or exc}") from None

    def delete(self, key: str) -> None:
        path = self.root / _check_key(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreUnreachable(f"cannot remove {path}: {exc.strerror}") from None


# --- HTTP(S) -----------------------------------------------------------------------------


class HttpStore:
    """DVC's http remote options honoured: ``auth`` basic (``user``, ``password``) or
    custom (``custom_auth_header`` carrying ``password``). Digest auth is refused."""

    def __init__(self, url: str, options: dict[str, Any], timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None and not options.get("auth"):
            # user:password@ in the URL is basic auth (as DVC's http remote takes it)...
            options = options | {
                "auth": "basic",
                "user": urllib.parse.unquote(parts.username),
                "password": urllib.parse.unquote(parts.password or ""),
            }
        # ...and never part of the host name a request resolves and sends.
        netloc = parts.netloc.rpartition("@")[2]
        self.base = urllib.parse.urlunsplit(parts._replace(netloc=netloc)).rstrip("/")
        self.where = redacted_url(url)
        self.timeout = timeout
        self.headers = _http_auth(options)

    def _request(self, key: str, method: str, **kw: Any) -> urllib.request.Request:
        import urllib.request  # only a store on HTTP needs it (a plain `mvctl pull` does not)

        url = f"{self.base}/{urllib.parse.quote(_check_key(key))}"
        return urllib.request.Request(url, method=method, headers=dict(self.headers), **kw)  # noqa: S310 - http(s) checked

    def read(self, key: str, validator: str | None) -> Read:
        import http.client
        import urllib.error

        req = self._request(key, "GET")
        if validator and validator.startswith("etag:"):
            req.add_header("If-None-Match", validator.removeprefix("etag:"))
        deadline = _Deadline(self.timeout * DEADLINE_TIMEOUTS)
        try:
            with _opener(deadline).open(req, timeout=self.timeout) as resp:
                body: bytes = resp.read(MAX_READ)
                etag = resp.headers.get("ETag")
                if len(body) < MAX_READ and resp.length:  # closed before its Content-Length
                    raise StoreUnreachable(f"{self.where} sent a truncated {key}")
            deadline.check(self.where)
        except urllib.error.HTTPError as exc:
            if exc.code == 304 and validator is not None:
                return Read(validator, None)
            if exc.code in (404, 410):
                return Read(ABSENT, None)
            raise StoreUnreachable(f"{self.where} answered {exc.code} for {key}") from None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            deadline.check(self.where)
            raise StoreUnreachable(f"cannot reach {self.where}: {_reason(exc)}") from None
        finally:
            deadline.cancel()
        # Without an ETag the content is the validator: every read is a full (small) GET.
        now = f"etag:{etag}" if etag else f"sha256:{hashlib.sha256(body).hexdigest()}"
        return Read(now, None if now == validator else body)

    def write(self, key: str, body: bytes) -> None:
        req = self._request(key, "PUT", data=body)
        req.add_header("Content-Type", "application/json")
        self._send(req, key)

    def delete(self, key: str) -> None:
        self._send(self._request(key, "DELETE"), key, missing_ok=True)

    def _send(self, req: urllib.request.Request, key: str, *, missing_ok: bool = False) -> None:
        import http.client
        import urllib.error

        deadline = _Deadline(self.timeout * DEADLINE_TIMEOUTS)
        try:
            with _opener(deadline).open(req, timeout=self.timeout) as resp:
                resp.read(MAX_READ)
            deadline.check(self.where)
        except urllib.error.HTTPError as exc:
            if missing_ok and exc.code in (404, 410):
                return
            raise StoreUnreachable(
                f"{self.where} answered {exc.code} to {req.method} {key}"
            ) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            deadline.check(self.where)
            raise StoreUnreachable(f"cannot reach {self.where}: {_reason(exc)}") from None
        finally:
            deadline.cancel()


class _Deadline:
    """A whole request's time limit: the socket timeout bounds each recv, not a server that
    trickles a byte per recv (a pointer's 4 KiB would take hours, the watcher blocked in
    it, no git poll meanwhile). At the deadline the request's sockets are shut down."""

    def __init__(self, seconds: float) -> None:
        import threading

        self.seconds = seconds
        self.fired = False
        self._lock = threading.Lock()
        self._sockets: list[Any] = []
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: Any) -> None:
        with self._lock:
            self._sockets.append(sock)
            if not self.fired:
                return
        self._fire()

    def _fire(self) -> None:
        import socket

        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()

    def check(self, where: str) -> None:
        if self.fired:
            raise StoreUnreachable(f"{where} did not answer within {self.seconds:g} s")


def _http_auth(options: dict[str, Any]) -> dict[str, str]:
    auth = options.get("auth")
    if not auth:
        return {}
    password = str(options.get("password") or "")
    if auth == "basic":
        import base64

        token = base64.b64encode(f"{options.get('user') or ''}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    if auth == "custom" and options.get("custom_auth_header"):
        return {str(options["custom_auth_header"]): password}
    raise UsageError(
        f"pointer files on an http remote support auth basic or custom, not {auth!r}",
        hint="use basic or custom auth for the remote, or keep pointers off",
    )


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    """No redirect is followed: one could carry the Authorization header to another host.
    Every connection's socket is shut down at ``deadline``."""
    import http.client
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    class Http(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    class Https(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    class HttpHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(Http, req)

    class HttpsHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(Https, req, context=self._context)  # type: ignore[attr-defined]

    return urllib.request.build_opener(NoRedirect(), HttpHandler(), HttpsHandler())


def _reason(exc: BaseException) -> str:
    """Why a request failed, never the request itself: http.client's own messages quote
    header values (an Authorization, a custom auth header's password) and URLs."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, OSError):
        reason = reason.strerror
    reason = reason or getattr(exc, "strerror", None)
    return str(reason)[:200] if isinstance(reason, str) else type(exc).__name__


# --- S3 ----------------------------------------------------------------------------------


class S3Store:
    """DVC's s3 remote options honoured: ``endpointurl``, ``region``, ``profile``,
    ``access_key_id``/``secret_access_key``/``session_token``; else botocore's own chain
    (AWS_* variables, AWS_ENDPOINT_URL_S3, ~/.aws)."""

    def __init__(self, url: str, options: dict[str, Any], timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if not parts.netloc:
            raise UsageError(f"{redacted_url(url)} names no bucket")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.where = redacted_url(url)
        self._client = _s3_client(options, timeout)

    def _key(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def read(self, key: str, validator: str | None) -> Read:
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        kw: dict[str, str] = {"Bucket": self.bucket, "Key": self._key(key)}
        if validator and validator.startswith("etag:"):
            kw["IfNoneMatch"] = validator.removeprefix("etag:")
        try:
            got = self._client.get_object(**kw)
            with contextlib.closing(got["Body"]) as stream:
                body: bytes = stream.read(MAX_READ)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("304", "NotModified") and validator is not None:
                return Read(validator, None)
            if code in ("404", "NoSuchKey"):
                return Read(ABSENT, None)
            raise StoreUnreachable(
                f"{self.where} answered {code or 'an error'} for {key}"
            ) from None
        except BotoCoreError as exc:
            raise StoreUnreachable(f"cannot reach {self.where}: {type(exc).__name__}") from None
        etag = got.get("ETag")
        now = f"etag:{etag}" if etag else f"sha256:{hashlib.sha256(body).hexdigest()}"
        return Read(now, None if now == validator else body)

    def write(self, key: str, body: bytes) -> None:
        self._call("put_object", key, Body=body, ContentType="application/json")

    def delete(self, key: str) -> None:
        self._call("delete_object", key)

    def _call(self, method: str, key: str, **kw: Any) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            getattr(self._client, method)(Bucket=self.bucket, Key=self._key(key), **kw)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "an error")
            raise StoreUnreachable(f"{self.where} answered {code} for {key}") from None
        except BotoCoreError as exc:
            raise StoreUnreachable(f"cannot reach {self.where}: {type(exc).__name__}") from None


def _s3_client(options: dict[str, Any], timeout: float) -> Any:
    try:
        import botocore.session  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]
    except ImportError:
        raise UsageError(
            "pointer files on S3 need botocore", hint="pip install 'mvctl[s3]'"
        ) from None
    session = botocore.session.get_session()
    if options.get("profile"):
        session.set_config_variable("profile", str(options["profile"]))
    creds = {
        "aws_access_key_id": options.get("access_key_id"),
        "aws_secret_access_key": options.get("secret_access_key"),
        "aws_session_token": options.get("session_token"),
    }
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    return session.create_client(
        "s3",
        endpoint_url=options.get("endpointurl") or None,
        region_name=options.get("region") or None,
        config=config,
        **{k: str(v) for k, v in creds.items() if v},
    )


# --- where a registry keeps them ---------------------------------------------------------


def registry_remote(root: Path) -> tuple[str, dict[str, Any]]:
    """The registry's default DVC remote (URL and options) as DVC's own config gives it:
    the committed config, config.local, the user's and the system's, merged."""
    from mvctl._adapters.dvc import _converted, disable_analytics

    disable_analytics()
    from dvc.config import Config

    with _converted("read the registry's DVC config"):
        config = Config(dvc_dir=os.fspath(root / ".dvc"))
    name = config["core"].get("remote")
    remotes: dict[str, dict[str, Any]] = dict(config.get("remote", {}))
    if not name or name not in remotes or not remotes[name].get("url"):
        raise OperationalError(
            "the registry has no default DVC remote to keep pointer files on",
            hint="set one with 'dvc remote add -d', or turn pointers off in mvctl.yaml",
        )
    options = dict(remotes[name])
    return str(options.pop("url")), options


def host_options(url: str) -> dict[str, Any]:
    """The options of the host's own DVC remote for ``url`` (its global or system config),
    or none: as for downloads, a host's credentials go only to the URL it configured."""
    from mvctl._adapters.dvc import _converted, disable_analytics

    disable_analytics()
    from dvc.config import Config

    with _converted("read the host's DVC config"):
        remotes: dict[str, dict[str, Any]] = dict(Config(dvc_dir=None).get("remote", {}))
    for _, options in sorted(remotes.items()):
        if str(options.get("url", "")).rstrip("/") == url.rstrip("/"):
            return {k: v for k, v in options.items() if k != "url"}
    return {}
