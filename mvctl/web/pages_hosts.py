"""The hosts page: what each ``--hosts`` directory's files and each ``--server``'s
/metrics say is served."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mvctl.serving.layout import ChannelServed
from mvctl.web.html import Html, h
from mvctl.web.pages import Viewer, page, table, weight_text


@dataclass(frozen=True)
class HostView:
    """One ``--hosts DIR`` (its state files) or one ``--server URL`` (its /metrics)."""

    where: str
    served: Mapping[str, ChannelServed]  # from the directory's files
    gauges: Sequence[tuple[str, str]] = ()  # (channel, version) from a server's /metrics
    error: str | None = None


def hosts(viewer: Viewer, views: Sequence[HostView]) -> Html:
    rows: list[tuple[object, ...]] = []
    for v in views:
        for channel, s in v.served.items():
            rows.append(
                (v.where, channel, s.version, s.since.replace("T", " ")[:19], weight_text(s.weight))
            )
        for channel, version in v.gauges:
            rows.append((v.where, channel, version, "-", "-"))
        if v.error or not (v.served or v.gauges):
            rows.append((v.where, "-", "-", "-", v.error or "serves nothing yet"))
    body: list[object] = [h("h1", "Hosts")]
    if not views:
        body.append(
            h(
                "p",
                "Start the dashboard with --hosts DIR or --server URL to see what hosts serve.",
                attrs={"class": "muted"},
            )
        )
    else:
        body.append(table(("host", "channel", "version", "since (UTC)", "weight / note"), rows))
    return page("Hosts", viewer, *body)
