"""What the dashboard's pages show, gathered from the core (no HTTP here; mvctl.web.ui
serves it, mvctl.web.pages* render it).

A page first fetches the remote's tags, so it shows what the fleet follows: under a bounded
time (a remote that never answers must not hang the page), never holding the dashboard's
state-change lock, and reporting every local alias the remote does not have (a move made
here and never published: the fleet does not serve it). Without a readable mvctl.yaml the
model page still shows what the tags say, as the rollback reads no config either.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mvctl._adapters.git import GitRepo, TagRecord
from mvctl._adapters.gitrun import GitTimedOut, redacted_text
from mvctl.channels import rollback as rollbacks
from mvctl.channels import state as channels
from mvctl.errors import MvctlError
from mvctl.formats import config, tags
from mvctl.formats.names import redacted_url
from mvctl.formats.rules import Rule
from mvctl.publishing import publish
from mvctl.publishing.sync import sync_git
from mvctl.registry import read
from mvctl.web import pages_hosts, pages_model

FETCH_TIMEOUT = 10.0  # seconds a page waits for each talk with the remote
METRICS_TIMEOUT = 3.0  # seconds for a server's whole /metrics answer
METRICS_LIMIT = 1 << 20  # bytes of it read at most


@dataclass(frozen=True)
class Fetched:
    """What a page's fetch from the remote found."""

    remote: str
    stale: str | None = None  # why the page shows this clone's state, or None
    # alias tag -> the version the remote's alias names (None: the remote has none), for
    # every local alias the remote does not have: moves made here, not published.
    pending: Mapping[str, str | None] = field(default_factory=dict)
    local_only: frozenset[str] = frozenset()  # immutable tags (events...) the remote lacks

    def fleet_has(self, model: str, channel: str) -> tuple[bool, str | None]:
        """Whether ``channel``'s alias here is unpublished, and what the remote's says."""
        name = tags.alias_tag(model, channel)
        return name in self.pending, self.pending.get(name)


def refresh(
    root: Path,
    push: bool | None,
    remote: str,
    model: str | None,
    *,
    timeout: float,
    fetching: threading.Lock,
) -> Fetched:
    """Fetch the remote's tags (``model``'s, or all). ``fetching`` keeps two fetches from
    sharing sync's private refs at once; a page that cannot have it in ``timeout`` shows
    this clone's state, and says so."""
    try:
        git = GitRepo.open(root)
        where = publish.target(git, push, remote)
        if where is None:
            return Fetched(remote)  # a local registry: this clone is the truth
        if not fetching.acquire(timeout=timeout):
            return Fetched(remote, f"{remote} is being read by another request: {_SHOWN}")
        try:
            synced = sync_git(git, where, model, timeout=timeout)
        finally:
            fetching.release()
        patterns = [f"{model}@*", f"{model}#*"] if model else ["*"]
        records = git.tags(*(f"{tags.TAG_PREFIX}{p}" for p in patterns))
        found = publish.pending(records, synced)
        fleet = _fleet_versions(git, synced.remote_records, found)
        return Fetched(remote, pending=fleet, local_only=frozenset(found.tags))
    except GitTimedOut:
        return Fetched(remote, f"{remote} did not answer within {timeout:g} s: {_SHOWN}")
    except MvctlError as exc:
        return Fetched(remote, f"Could not fetch from {remote} ({exc.message}): {_SHOWN}")


_SHOWN = "showing this clone's state, which may not be what the fleet follows."


def _fleet_versions(
    git: GitRepo, remote_records: Mapping[str, TagRecord], found: publish.Pending
) -> dict[str, str | None]:
    """alias -> the version the remote's alias is on, for each alias pending here."""
    out: dict[str, str | None] = {}
    states: dict[str, channels.ModelState] = {}
    for name in found.aliases:
        parsed = tags.parse(name)
        if parsed is None:
            continue
        state = states.get(parsed.model)
        if state is None:
            state = states[parsed.model] = channels.load(git, parsed.model)
        theirs = remote_records.get(name)
        out[name] = state.version_at(theirs.commit) if theirs is not None else None
    return out


@dataclass(frozen=True)
class ModelPage:
    views: list[pages_model.ChannelView]
    versions: list[read.VersionInfo]
    state: channels.ModelState
    config_error: str | None  # mvctl.yaml cannot be read: why


def model_page(root: Path, name: str, fetched: Fetched) -> ModelPage:
    """The model page's channels and versions; a broken mvctl.yaml costs only the monitors
    (a channel with an alias is a channel, as for the rollback)."""
    versions = read.list_versions(root, name)
    state = channels.load(GitRepo.open(root), name)
    metrics = {v.version: v.metrics for v in versions}
    cfg: config.RegistryConfig | None = None
    config_error = None
    try:
        cfg = config.load(root)
    except MvctlError as exc:
        config_error = exc.message
    known = list(cfg.channels) if cfg else []
    known += [c for c in state.tags.aliases if c not in known]
    known += [e.channel for e in state.events if e.channel not in known]
    views = []
    for channel in known:
        events = state.channel_events(channel)
        if not events and state.alias(channel) is None:
            continue
        held = state.holder(channel)
        unpublished, fleet = fetched.fleet_has(name, channel)
        monitors: tuple[Rule, ...] | None = (
            tuple(cfg.model(name).monitors(channel)) if cfg else None
        )
        views.append(
            pages_model.ChannelView(
                channel=channel,
                version=held,
                weight=state.weight(channel),
                metrics=metrics.get(held or "", {}),
                monitors=monitors,
                last_automatic=next((e for e in reversed(events) if e.incident), None),
                last_event=events[-1] if events else None,
                targets=rollbacks.rollback_targets(state, channel),
                unpublished=unpublished,
                fleet=fleet,
            )
        )
    return ModelPage(views, versions, state, config_error)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, never followed: urllib would copy the Authorization header
    (the serve token) onto the request to wherever it points."""

    def redirect_request(self, *_: object, **__: object) -> None:
        return None


def server_view(url: str, token: str | None) -> pages_hosts.HostView:
    """What ``url``'s /metrics says it serves (``mvctl_served_info`` gauges set to 1),
    read under one deadline and a size cap; the URL is shown and sent without userinfo."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    shown = redacted_url(urlunsplit(bare))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    target = urlunsplit(bare).rstrip("/") + "/metrics"
    request = urllib.request.Request(target, headers=headers)  # noqa: S310 - http(s) only, checked by the CLI
    opener = urllib.request.build_opener(_NoRedirects)
    deadline = time.monotonic() + METRICS_TIMEOUT
    try:
        with opener.open(request, timeout=METRICS_TIMEOUT) as answer:
            body = b""
            while len(body) < METRICS_LIMIT:
                if time.monotonic() > deadline:  # a slow drip is no answer either
                    return pages_hosts.HostView(shown, {}, error="/metrics took too long")
                chunk = answer.read(min(65536, METRICS_LIMIT - len(body)))
                if not chunk:
                    break
                body += chunk
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            why = f"/metrics answered a redirect ({exc.code}), not followed"
        else:
            why = f"cannot read /metrics: HTTP {exc.code}"
        return pages_hosts.HostView(shown, {}, error=why)
    except (OSError, ValueError) as exc:
        reason = redacted_text(str(getattr(exc, "reason", exc)))
        return pages_hosts.HostView(shown, {}, error=f"cannot read /metrics: {reason}")
    gauges = []
    for match in _SERVED.finditer(body.decode("utf-8", "replace")):
        labels = dict(_LABEL.findall(match["labels"]))
        gauges.append((labels.get("channel", "?"), labels.get("version", "?")))
    return pages_hosts.HostView(shown, {}, gauges=gauges)


_SERVED = re.compile(r"^mvctl_served_info\{(?P<labels>[^}]*)\}\s+1(?:\.0)?\s*$", re.M)
_LABEL = re.compile(r'(\w+)="([^"\\]*)"')
