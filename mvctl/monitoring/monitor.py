"""``mvctl monitor``: a channel's monitors checked against the version it serves, and a
rollback on a breach when asked.

    models:
      fraud:
        columns: {label: is_fraud, prediction: pred, sensitive: [region], positive: 1}
        monitors:
          production:
            - {drift: psi, max: 0.25, warn: 0.1}
            - {bias: demographic_parity_difference, max: 0.10}
            - {metric: false_positive_rate, max: 0.05}
            - {metric: false_positive_rate, max_increase: 0.15}  # vs the registered value

A metric rule is measured on the labelled rows of ``--predictions`` (joined to ``--live``)
when they carry the label and prediction columns, else read from ``--metrics FILE`` or
Prometheus's queries (mvctl.monitoring.live); its
relative bounds compare with the ``metrics:`` the served version registered in its
manifest. The rules themselves are mvctl.analysis.rules. A monitor breaches only on evidence: a rule
whose input was not supplied is reported as skipped, so a partial feed never rolls a channel
back by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mvctl._adapters.git import GitRepo
from mvctl.analysis.rules import Evaluation, Registered, Roles, evaluate
from mvctl.analysis.tables import load_live
from mvctl.channels import state as channels
from mvctl.channels.moves import ChannelMove
from mvctl.channels.rollback import rollback as roll_back
from mvctl.errors import MvctlError, UsageError, holds_no_version
from mvctl.formats import config, tags
from mvctl.formats.names import check_channel, check_model
from mvctl.formats.rules import MetricRule
from mvctl.monitoring import live as live_metrics
from mvctl.monitoring.live import PrometheusSource
from mvctl.registry.read import load_manifest, read_profile


@dataclass(frozen=True)
class MonitorReport:
    model: str
    channel: str
    version: str
    evaluation: Evaluation
    rollback: ChannelMove | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # A rollback asked for but refused or failed: the report still stands, then the error.
    rollback_error: MvctlError | None = field(default=None, compare=False)

    @property
    def breached(self) -> bool:
        return self.evaluation.breached

    def summary(self) -> str:
        bad = [r for r in self.evaluation.results if r.level == "breach"]
        return "; ".join(f"{r.rule}: {r.detail}" for r in bad) or "no breach"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "channel": self.channel,
            "version": self.version,
            "breached": self.breached,
            "results": [r.to_dict() for r in self.evaluation.results],
            "drift": [d.to_dict() for d in self.evaluation.drift],
            "bias": [b.to_dict() for b in self.evaluation.bias],
            "rollback": self.rollback.to_dict() if self.rollback else None,
            "rollback_error": (
                {
                    "error": self.rollback_error.message,
                    "hint": self.rollback_error.hint,
                    "exit": self.rollback_error.exit_code,
                }
                if self.rollback_error
                else None
            ),
            "notes": list(self.notes),
        }


def monitor(
    root: Path,
    model: str,
    channel: str = "production",
    *,
    live: Path | None = None,
    predictions: Path | None = None,
    metrics_file: Path | None = None,
    prometheus: PrometheusSource | None = None,
    rollback: bool = False,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> MonitorReport:
    """Evaluate ``channel``'s monitors against the version it serves; on a breach with
    ``rollback``, roll the channel back with the breach summary as the reason. Live
    metrics come from ``metrics_file`` or from ``prometheus``'s queries, not both."""
    check_model(model)
    check_channel(channel)
    if live is None and predictions is None and metrics_file is None and prometheus is None:
        raise UsageError("monitor needs --live, --predictions, --metrics or --prometheus")
    if metrics_file is not None and prometheus is not None:
        raise UsageError("--metrics and --prometheus are two sources of the same metrics: give one")
    if prometheus is not None:
        prometheus.check()
    git = GitRepo.open(root)
    registry_cfg = config.load(git.root)
    cfg = registry_cfg.model(model)
    state = channels.load(git, model)
    version = state.holder(channel)
    if version is None:
        raise holds_no_version(model, channel, "nothing to monitor")
    # A monitors table under a misspelled model must not leave the channel unwatched.
    rules = registry_cfg.rules_for(
        model, "monitors", channel, lambda m: bool(git.tags(tags.version_glob(m)))
    )
    notes = [] if rules else [f"no monitors configured for {channel} in mvctl.yaml"]
    commit = state.tags.versions[version].commit
    reference = read_profile(git, model, commit)
    registered = None
    if any(isinstance(rule, MetricRule) for rule in rules):
        registered = Registered(version, load_manifest(git, model, version, commit).metrics)
    frame = load_live(live, predictions)
    metrics = live_metrics.from_file(metrics_file) if metrics_file else None
    if prometheus is not None:
        metrics, queried = live_metrics.from_prometheus(prometheus)
        notes.extend(queried)
    roles = Roles.from_config(cfg.raw)
    # Live metrics only from --predictions: a --live batch that happens to carry a label
    # column is the features the drift rules read, not the outcomes a rate is measured on.
    outcomes = frame if predictions is not None else None
    evaluation = evaluate(rules, reference, frame, metrics, roles, registered, outcomes)
    report = MonitorReport(model, channel, version, evaluation, notes=tuple(notes))
    if report.breached and rollback:
        try:
            move = roll_back(
                git.root,
                model,
                channel,
                reason=f"monitor: {report.summary()}",
                push=push,
                remote=remote,
                dry_run=dry_run,
            )
        except MvctlError as exc:
            return replace(report, rollback_error=exc)
        report = replace(report, rollback=move)
    return report
