"""Webhook incidents are scoped to the release: an alert rolls a channel back only away from
the version it served when the alert started, once per release, whatever the alert group,
its members' start times, or the replica (each a clone of one bare remote).

Reproductions from the issue "the panic button must never lie", item 3 (a)-(c), plus a
replica killed between its local write and its push."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.channels.promotion import promote
from mvctl.check import check
from mvctl.web import webhook
from tests.conftest import (
    Registry,
    build_template,
    copy_registry,
    git_shim,
    isolate,
    remote_holder,
    remote_tags,
    run,
)

CONFIG = "version: 1\nchannels: [production, staging, canary, shadow]\nmodels: {fraud: {}}\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("incidents-template")
    home = base / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, home)
        reg = build_template(base, CONFIG, {"v0.1.0": 0.9, "v0.2.0": 0.9, "v0.3.0": 0.9})
        for version in ("v0.1.0", "v0.2.0"):
            promote(reg.root, "fraud", version, "production")
    yield base


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path)
    monkeypatch.chdir(registry.root)
    return registry


def replica(reg: Registry, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    run("git", "clone", "-q", str(reg.origin), path, cwd=tmp_path)
    return path


def release(reg: Registry, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Promote ``version`` a minute ago (git's clock), so alerts can start after it."""
    stamp = (datetime.now(UTC) - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    with monkeypatch.context() as mp:
        mp.setenv("GIT_COMMITTER_DATE", stamp)
        promote(reg.root, "fraud", version, "production")


def at(offset_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def payload(group: str, *alerts: tuple[str, str, str]) -> dict[str, Any]:
    """(alertname, status, startsAt) per alert, as Alertmanager sends a group."""
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{group}"}}',
        "status": "firing",
        "receiver": "mvctl",
        "groupLabels": {"alertname": group},
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": name, "mvctl_model": "fraud", "instance": name},
                "annotations": {"summary": f"{name} is high"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": name,
            }
            for name, status, starts in alerts
        ],
    }


def actions(root: Path, body: dict[str, Any]) -> list[str]:
    return [d.action for d in webhook.handle(root, body)]


def rollbacks_on_remote(reg: Registry) -> list[str]:
    fresh = reg.root.parent / f"fresh-{len(list(reg.root.parent.iterdir()))}"
    run("git", "clone", "-q", str(reg.origin), fresh, cwd=reg.root.parent)
    state = channels.load(GitRepo.open(fresh), "fraud")
    return [e.name for e in state.events if e.kind == "rollback"]


def test_promote_then_an_alert_rolls_back_once(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    release(reg, "v0.3.0", monkeypatch)
    body = payload("HighErrorRate", ("HighErrorRate", "firing", at(-30)))
    assert actions(reg.root, body) == ["rolled_back"]
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert actions(reg.root, body) == ["already"]
    assert len(rollbacks_on_remote(reg)) == 1


def test_a_resolved_first_member_does_not_start_a_new_incident(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (a) The key used the earliest startsAt of the firing alerts: once that alert resolved
    # while another of the group still fired, the next notification rolled back again.
    release(reg, "v0.3.0", monkeypatch)
    first, second = at(-30), at(-20)
    both = payload("Errors", ("ErrorsA", "firing", first), ("ErrorsB", "firing", second))
    assert actions(reg.root, both) == ["rolled_back"]
    later = payload("Errors", ("ErrorsA", "resolved", first), ("ErrorsB", "firing", second))
    assert actions(reg.root, later) == ["already"]
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert len(rollbacks_on_remote(reg)) == 1


def test_a_stale_replica_fetches_before_it_decides(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (b) A replica whose clone was stale decided before fetching and rolled back again.
    stale = replica(reg, tmp_path, "replica-b")
    release(reg, "v0.3.0", monkeypatch)
    fresh = replica(reg, tmp_path, "replica-a")
    body = payload("HighErrorRate", ("HighErrorRate", "firing", at(-30)))
    assert actions(fresh, body) == ["rolled_back"]
    assert actions(stale, body) == ["already"]
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert len(rollbacks_on_remote(reg)) == 1


def test_two_groups_about_one_release_roll_back_once(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (c) Error rate and latency fire for the same bad release, in two groups, to two
    # replicas: one rollback, not two versions.
    release(reg, "v0.3.0", monkeypatch)
    errors = payload("HighErrorRate", ("HighErrorRate", "firing", at(-30)))
    latency = payload("HighLatency", ("HighLatency", "firing", at(-20)))
    one, two = replica(reg, tmp_path, "one"), replica(reg, tmp_path, "two")
    assert actions(one, errors) == ["rolled_back"]
    assert actions(two, latency) == ["already"]
    assert actions(one, latency) == ["already"]
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert len(rollbacks_on_remote(reg)) == 1


def test_an_alert_that_started_on_the_new_version_acts_again(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    release(reg, "v0.3.0", monkeypatch)
    assert actions(reg.root, payload("E", ("E", "firing", at(-30)))) == ["rolled_back"]
    # v0.2.0 is bad too: an alert that starts after the rollback is about v0.2.0.
    assert actions(reg.root, payload("E", ("E", "firing", at(2)))) == ["rolled_back"]
    assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0"
    assert len(rollbacks_on_remote(reg)) == 2


@pytest.mark.slow
def test_concurrent_replicas_race_to_one_rollback(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release(reg, "v0.3.0", monkeypatch)
    starts = at(-30)
    clones = [replica(reg, tmp_path, f"r{i}") for i in range(4)]
    script = (
        "import json, sys; from pathlib import Path; from mvctl.web import webhook; "
        "print(json.dumps([d.to_dict() for d in webhook.handle(Path.cwd(), "
        "json.loads(sys.argv[1]))]))"
    )
    body = json.dumps(payload("HighErrorRate", ("HighErrorRate", "firing", starts)))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, body], cwd=c, stdout=subprocess.PIPE, text=True
        )
        for c in clones
    ]
    decided = [json.loads(p.communicate(timeout=120)[0])[0]["action"] for p in procs]
    assert sorted(decided) == ["already"] * 3 + ["rolled_back"], decided
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert len(rollbacks_on_remote(reg)) == 1


@pytest.mark.slow
def test_a_replica_killed_before_its_push_completes_on_the_repeat(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # item 2: the restarted webhook answered "already handled" and never pushed.
    release(reg, "v0.3.0", monkeypatch)
    real = shutil.which("git")
    assert real is not None
    shim_dir = tmp_path / "shim"
    git_shim(shim_dir, str(Path(real).resolve()))
    body = payload("HighErrorRate", ("HighErrorRate", "firing", at(-30)))
    script = (
        "import json, sys; from pathlib import Path; from mvctl.web import webhook; "
        "webhook.handle(Path.cwd(), json.loads(sys.argv[1]))"
    )
    env = {
        **os.environ,
        "PATH": f"{shim_dir}{os.pathsep}{os.environ['PATH']}",
        "MVCTL_SHIM_ON": "push",
        "MVCTL_SHIM_WHEN": "before",
    }
    killed = subprocess.run(
        [sys.executable, "-c", script, json.dumps(body)], cwd=reg.root, env=env, check=False
    )
    assert killed.returncode == -9
    local = channels.load(GitRepo.open(reg.root), "fraud")
    assert local.holder("production") == "v0.2.0"  # written here ...
    assert remote_holder(reg.origin, "fraud", "production") == "v0.3.0"  # ... never published
    decisions = webhook.handle(reg.root, body)
    assert [d.action for d in decisions] == ["rolled_back"]
    assert "published the pending rollback" in decisions[0].detail
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert len(rollbacks_on_remote(reg)) == 1
    assert "fraud@production" in remote_tags(reg.origin)
    assert check(reg.root).ok


def test_an_alert_for_an_unknown_model_is_ignored_not_retried(reg: Registry) -> None:
    body = payload("E", ("E", "firing", at(-30)))
    body["alerts"][0]["labels"]["mvctl_model"] = "frad"  # a typo in the alert rule
    [decision] = webhook.handle(reg.root, body)
    assert (decision.action, decision.retry) == ("ignored", False)
    assert "no registered versions" in decision.detail


@pytest.mark.parametrize("starts", [None, "garbage", "2999-01-01T00:00:00Z"])
def test_a_repeated_alert_without_a_usable_start_rolls_back_once(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, starts: str | None
) -> None:
    # With no start time (or one from a clock far ahead) the alert could not be scoped to a
    # release, and each delivery rolled back one more version.
    release(reg, "v0.3.0", monkeypatch)
    body = payload("E", ("E", "firing", starts or ""))
    if starts is None:
        del body["alerts"][0]["startsAt"]
    assert actions(reg.root, body) == ["rolled_back"]
    assert actions(reg.root, body) == ["already"]
    assert actions(reg.root, body) == ["already"]
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert len(rollbacks_on_remote(reg)) == 1


@pytest.mark.slow
def test_two_real_replicas_two_groups_repeated_one_rollback_and_the_fleet_follows(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole reproduction over sockets: two `mvctl webhook serve` replicas (clones of
    one bare remote), Alertmanager's error-rate and latency groups for one bad release,
    each repeated to both, and a serving host following production."""
    import httpx

    from tests.web.test_webhook_server import AUTH, webhook

    release(reg, "v0.3.0", monkeypatch)
    host = tmp_path / "host"
    pulled = run(sys.executable, "-m", "mvctl", "pull", str(reg.origin), "fraud",
                 "--dest", str(host), cwd=tmp_path)  # fmt: skip
    assert json.loads((host / "state.json").read_text())["version"] == "v0.3.0", pulled.stderr
    errors = payload("HighErrorRate", ("HighErrorRate", "firing", at(-30)))
    latency = payload("HighLatency", ("HighLatency", "firing", at(-20)))
    second = Registry(replica(reg, tmp_path, "replica-2"), reg.origin, reg.storage)
    decided: list[str] = []
    with webhook(reg) as (one, _), webhook(second) as (two, _):
        for url, body in [(one, errors), (two, latency), (two, errors), (one, latency)] * 2:
            response = httpx.post(f"{url}/alerts", json=body, headers=AUTH, timeout=60)
            assert response.status_code == 200, response.text
            decided += [d["action"] for d in response.json()["decisions"]]
    assert decided == ["rolled_back"] + ["already"] * 7
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert len(rollbacks_on_remote(reg)) == 1
    run(sys.executable, "-m", "mvctl", "pull", str(reg.origin), "fraud", "--dest", str(host),
        cwd=tmp_path)  # fmt: skip
    assert json.loads((host / "state.json").read_text())["version"] == "v0.2.0"
