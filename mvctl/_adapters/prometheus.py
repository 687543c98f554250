"""Prometheus's HTTP query API (``GET /api/v1/query``), with a timeout, a size cap, no
redirects (a bearer token never follows one to another host) and failures as
OperationalError. The answer is returned as JSON for mvctl.formats.queryapi to validate."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from mvctl.errors import OperationalError, UsageError
from mvctl.formats import queryapi
from mvctl.formats.names import redacted_url, shown

TOKEN_ENV = "MVCTL_PROMETHEUS_TOKEN"  # noqa: S105 - the variable's name, not a secret
_URL = re.compile(r"https?://[^\s/?#@]+(?::\d{1,5})?(?:/[^\s?#]*)?", re.I)


def check_url(url: str) -> str:
    """An http(s) base URL without credentials, query or fragment; the trailing / dropped."""
    if not _URL.fullmatch(url):
        raise UsageError(
            f"--prometheus {shown(redacted_url(url)[:200])} is not an http(s) URL",
            hint="e.g. --prometheus http://127.0.0.1:9090 (a token goes in "
            f"{TOKEN_ENV}, never in the URL)",
        )
    return url.rstrip("/")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


def query(base: str, promql: str, *, token: str | None, timeout: float = 10.0) -> Any:
    """The decoded JSON Prometheus answers for the instant query ``promql``."""
    url = f"{check_url(base)}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(_NoRedirect)
    where = f"Prometheus at {redacted_url(base)}"
    try:
        with opener.open(request, timeout=timeout) as answer:
            raw = answer.read(queryapi.MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code in (400, 422, 503):  # a bad query or a timeout: the JSON says why
            raw = exc.read(queryapi.MAX_RESPONSE_BYTES + 1)
        else:
            raise OperationalError(
                f"{where} answered HTTP {exc.code}",
                hint=f"check the URL and {TOKEN_ENV}" if exc.code in (401, 403) else None,
            ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OperationalError(
            f"cannot query {where}: {shown(str(reason)[:200])}",
            hint="is Prometheus running and reachable from here?",
        ) from None
    return queryapi.decode(raw, f"the answer of {where}")
