"""A host whose primary channel is cleared (`mvctl unassign`): it keeps serving what it has,
says the channel is empty (no error, no backoff, nothing removed), and swaps again on the
channel's next promotion."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from mvctl import serving
from mvctl.channels.promotion import promote
from mvctl.channels.weights import unassign
from mvctl.errors import OperationalError
from mvctl.serving.hostmetrics import HostMetrics
from tests.conftest import Registry, copy_registry
from tests.serving import test_serving as base
from tests.serving.test_serving import WEIGHTS, _until, pull_argv, request, served_bytes

template, reg, host = base.template, base.reg, base.host


def staging(reg: Registry, host: Path, **kw: object) -> serving.PullRequest:
    return request(reg, host, channel="staging", **kw)


def clear(reg: Registry, channel: str = "staging") -> None:
    unassign(reg.root, "fraud", channel, reason="trial over", force=True, push=True)


def snapshot(host: Path) -> tuple[str, str, list[str]]:
    return (
        str((host / "current").readlink()),
        (host / "state.json").read_text(),
        sorted(p.name for p in (host / "versions").iterdir()),
    )


def test_a_cleared_channel_keeps_what_it_served_and_swaps_on_the_next_promotion(
    reg: Registry, host: Path, tmp_path: Path
) -> None:
    promote(reg.root, "fraud", "v0.2.0", "staging", push=True)
    first = serving.pull_channels(staging(reg, host))
    assert first.primary is not None and first.primary.version == "v0.2.0"
    clear(reg)
    before = snapshot(host)
    result = serving.pull_channels(staging(reg, host))
    [outcome] = result.outcomes
    assert outcome.error is None and outcome.empty and not outcome.changed
    assert (outcome.version, outcome.previous) == ("v0.2.0", "v0.2.0")
    assert result.primary is not None and result.primary.version == "v0.2.0"
    assert snapshot(host) == before  # nothing removed, nothing rewritten
    assert served_bytes(host) == WEIGHTS["v0.2.0"]
    # Its metrics: still serving v0.2.0, and the alias names nothing (no stale series).
    metrics = HostMetrics("fraud")
    metrics.observe(first)
    metrics.observe(result)
    text = metrics.render()[0].decode()
    assert 'mvctl_served_info{channel="staging",model="fraud",version="v0.2.0"} 1.0' in text
    assert "mvctl_alias_info{" not in text
    assert 'mvctl_sync_errors_total{model="fraud"} 0.0' in text
    # The command says so plainly, exit 0, in text and JSON.
    proc = subprocess.run(pull_argv(reg, host, "-c", "staging"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "· fraud@staging: the channel is empty (no alias fraud@staging on the remote): "
        "keeps serving v0.2.0 until its next promotion"
    )
    shown = subprocess.run(
        [*pull_argv(reg, host, "-c", "staging"), "--json"], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["version"] == "v0.2.0" and report["changed"] is False
    assert report["channels"]["staging"]["empty"] is True
    # The next promotion swaps as any move does (here from the local cache).
    shutil.move(reg.storage, tmp_path / "storage-gone")
    promote(reg.root, "fraud", "v0.2.0", "staging", push=True)
    again = serving.pull_channels(staging(reg, host)).outcomes[0]
    assert again.error is None and not again.empty
    assert again.version == "v0.2.0" and not again.downloaded
    shutil.move(tmp_path / "storage-gone", reg.storage)
    promote(reg.root, "fraud", "v0.3.0", "staging", push=True)
    moved = serving.pull(staging(reg, host))
    assert (moved.served.version, moved.previous, moved.downloaded) == ("v0.3.0", "v0.2.0", True)
    assert served_bytes(host) == WEIGHTS["v0.3.0"]


def test_a_host_that_never_served_the_channel_still_fails(reg: Registry, host: Path) -> None:
    promote(reg.root, "fraud", "v0.2.0", "staging", push=True)
    clear(reg)
    with pytest.raises(OperationalError, match="has no channel alias fraud@staging"):
        serving.pull(staging(reg, host))
    assert not (host / "current").exists()


def test_a_cleared_primary_next_to_other_channels(reg: Registry, host: Path) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    promote(reg.root, "fraud", "v0.2.0", "shadow", push=True)
    req = serving.PullRequest.following(
        str(reg.origin), "fraud", ("production", "shadow"), host, dvc_remote=str(reg.storage)
    )
    serving.pull_channels(req)
    clear(reg, "production")
    promote(reg.root, "fraud", "v0.3.0", "shadow", push=True)
    result = serving.pull_channels(req)
    primary, shadow = result.outcomes
    assert primary.empty and primary.version == "v0.1.0" and primary.error is None
    assert shadow.changed and shadow.version == "v0.3.0"  # the others carry on
    assert (host / "current").readlink() == Path("versions/v0.1.0")


@pytest.mark.slow
def test_watch_says_it_once_and_picks_up_the_next_promotion(
    reg: Registry, host: Path, tmp_path: Path
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "staging", push=True)
    argv = pull_argv(reg, host, "-c", "staging", "--watch", "--interval", "0.2")
    log, errors = tmp_path / "out.log", tmp_path / "err.log"
    with log.open("w") as out, errors.open("w") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
    said = "fraud@staging: the channel is empty (no alias fraud@staging on the remote): "
    try:
        assert _until(lambda: base._serves(host, "v0.1.0"))
        before = snapshot(host)
        clear(reg)
        assert _until(lambda: said in log.read_text())
        assert snapshot(host) == before  # it keeps serving what it had
        promote(reg.root, "fraud", "v0.2.0", "staging", push=True)
        assert _until(lambda: "v0.1.0 -> v0.2.0" in log.read_text())  # logged after the swap
        assert base._serves(host, "v0.2.0")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, errors.read_text()
    # An empty channel is no failure: no error line, so no backoff either.
    assert "error" not in errors.read_text(), errors.read_text()
    lines = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    assert [line for line in lines if "empty" in line] == [
        said + "keeps serving v0.1.0 until its next promotion"
    ]
    assert (
        f"fraud@staging: v0.1.0 -> v0.2.0 (downloaded and verified) at "
        f"{(host / 'versions' / 'v0.2.0' / 'model.bin').resolve()}"
    ) in lines
    assert lines[-1] == "received SIGTERM: stopping"


def test_a_host_woken_by_pointer_files_keeps_serving_and_wakes_on_the_next_promotion(
    template: Path, tmp_path: Path, host: Path
) -> None:
    from tests.serving import test_pointerwatch as pointers

    reg = copy_registry(template, tmp_path, storage=False)
    pointers.with_pointers(reg, reg.storage)
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    watch, rec = pointers.watcher(reg, host)
    watch.step(0.0)
    assert pointers.served(host) == "v0.1.0"
    clear(reg, "production")
    for now in (1.0, 2.0, 3602.0):  # pointer polls, then a git poll (git_interval passed)
        watch.step(now)
    assert not rec.errors
    last = rec.results[-1].outcomes[0]
    assert last.empty and last.version == "v0.1.0" and last.error is None
    assert pointers.served(host) == "v0.1.0" and served_bytes(host) == WEIGHTS["v0.1.0"]
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    watch.step(3603.0)  # long before the next git poll: the new pointer wakes it
    assert pointers.served(host) == "v0.2.0" and not rec.errors
