"""One host directory following production, a weighted canary and a shadow of one model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mvctl import serving
from mvctl.serving.commit import RefusedCommit
from tests.conftest import Registry, git, git_shim, remote_tags
from tests.serving import test_serving as base
from tests.serving.test_serving import WEIGHTS, pull_argv, serve

template, reg, host = base.template, base.reg, base.host

CHANNELS = ("production", "canary", "shadow")


def request(reg: Registry, host: Path, *channels: str, **kw: object) -> serving.PullRequest:
    return serving.PullRequest.following(
        str(reg.origin), "fraud", channels or CHANNELS, host, dvc_remote=str(reg.storage), **kw
    )


def flags(*channels: str) -> list[str]:
    return [arg for channel in channels for arg in ("--channel", channel)]


def assign(reg: Registry, version: str, channel: str, weight: float | None = None) -> None:
    from mvctl.channels.promotion import promote

    promote(reg.root, "fraud", version, channel, push=True, weight=weight)


def share(reg: Registry, weight: float) -> str:
    """`mvctl canary weight`: the alias moves to a new tag on the same commit."""
    from mvctl.channels.weights import set_weight

    set_weight(reg.root, "fraud", weight, push=True)
    return reg.git("rev-parse", "fraud@canary").strip()


def retag(reg: Registry, channel: str, body_tail: str, commit: str | None = None) -> str:
    """Move fraud@CHANNEL to a new annotated tag (on ``commit``, default the alias's own)
    whose body is the alias's body with ``body_tail`` (raw JSON members) appended: the
    weighted alias a canary move writes, or a hostile one. Returns the new tag object."""
    alias = f"fraud@{channel}"
    commit = commit or reg.git("rev-parse", f"{alias}^{{commit}}").strip()
    raw = reg.git("cat-file", "tag", alias)
    title, _, body = raw.partition("\n\n")[2].partition("\n\n")
    fields = json.loads(body)
    fields.pop("weight", None)
    text = json.dumps(fields, indent=1)
    message = reg.root.parent / "tag-message"
    message.write_text(f"{title}\n\n{text[:-2]},\n {body_tail}\n}}\n")
    reg.git("tag", "-f", "-a", "-F", str(message), alias, commit)
    reg.git("push", "-q", "--force", "origin", f"refs/tags/{alias}")
    return reg.git("rev-parse", alias).strip()


def weigh(reg: Registry, weight: object, channel: str = "canary") -> str:
    """A hand-made alias with any weight at all (what a hostile pusher writes)."""
    return retag(reg, channel, f'"weight": {json.dumps(weight)}')


def stop_channel(reg: Registry, channel: str) -> None:
    """`mvctl canary stop`: an unassignment event, and the alias deleted."""
    from mvctl.channels.weights import stop

    stop(reg.root, "fraud", channel, reason="test", push=True)


def three(reg: Registry, host: Path, **kw: object) -> serving.ChannelsResult:
    """production v0.1.0, canary v0.2.0 at 10%, shadow v0.3.0, pulled."""
    serve(reg, "v0.1.0")
    assign(reg, "v0.2.0", "canary", weight=10)
    assign(reg, "v0.3.0", "shadow")
    return serving.pull_channels(request(reg, host, **kw))


def held(host: Path) -> dict[str, tuple[str, float | None]]:
    return {c: (s.version, s.weight) for c, s in serving.served_channels(host).items()}


def link(host: Path, channel: str) -> str:
    return str((host / "channels" / channel).readlink())


def test_production_canary_and_shadow_in_one_dir(reg: Registry, host: Path) -> None:
    result = three(reg, host)
    assert [o.channel for o in result.outcomes] == list(CHANNELS)
    assert all(o.changed and o.downloaded and o.error is None for o in result.outcomes)
    assert list(held(host).items()) == [
        ("production", ("v0.1.0", None)),
        ("canary", ("v0.2.0", 10.0)),
        ("shadow", ("v0.3.0", None)),
    ]
    # The primary is what current and the top-level fields describe, as before.
    assert (host / "current").readlink() == Path("versions/v0.1.0")
    assert result.primary is not None and result.primary.version == "v0.1.0"
    state = json.loads((host / "state.json").read_text())
    assert (state["channel"], state["version"]) == ("production", "v0.1.0")
    assert [link(host, c) for c in CHANNELS] == [f"../versions/v0.{n}.0" for n in (1, 2, 3)]
    for channel, version in zip(CHANNELS, WEIGHTS, strict=True):
        assert (host / "channels" / channel / "model.bin").read_bytes() == WEIGHTS[version]
    aliases = remote_tags(reg.origin)
    assert {c: state["channels"][c]["alias"] for c in CHANNELS} == {
        c: aliases[f"fraud@{c}"] for c in CHANNELS
    }
    assert state["channels"]["canary"]["weight"] == 10
    # --status shows every channel, in the table and under --json.
    argv = [sys.executable, "-m", "mvctl", "pull", "--status", "--dest", str(host)]
    shown = json.loads(subprocess.run([*argv, "--json"], capture_output=True, text=True).stdout)
    assert shown["version"] == "v0.1.0" and shown["kept"] == ["v0.1.0", "v0.2.0", "v0.3.0"]
    assert {c: (e["version"], e["weight"]) for c, e in shown["channels"].items()} == held(host)
    table = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rows = [[cell.strip() for cell in ln.split("│")[1:-1]] for ln in table.splitlines()]
    assert ["canary", "v0.2.0", "10%"] in [row[:3] for row in rows]
    assert ["shadow", "v0.3.0", "-"] in [row[:3] for row in rows]


def test_a_weight_change_is_no_download(reg: Registry, host: Path, tmp_path: Path) -> None:
    three(reg, host)
    since = json.loads((host / "state.json").read_text())["channels"]["canary"]["since"]
    shutil.move(reg.storage, tmp_path / "storage-gone")  # nothing can be downloaded now
    log = tmp_path / "hooks.jsonl"
    hook = (
        sys.executable,
        "-c",
        "import json, os, sys; open(sys.argv[1], 'a').write(json.dumps({k: v for k, v in"
        " os.environ.items() if k.startswith('MVCTL_')}) + '\\n')",
        str(log),
    )
    alias = share(reg, 50)
    result = serving.pull_channels(request(reg, host, on_change=hook))
    canary = result.outcome("canary")
    assert canary is not None and canary.error is None
    assert (canary.changed, canary.downloaded, canary.previous_weight) == (True, False, 10.0)
    assert held(host)["canary"] == ("v0.2.0", 50.0)
    entry = json.loads((host / "state.json").read_text())["channels"]["canary"]
    assert (entry["alias"], entry["since"]) == (alias, since)  # the version served since then
    others = [o for o in result.outcomes if o.channel != "canary"]
    assert not any(o.changed for o in others)
    # The hook ran once, for the channel that changed.
    hooks = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(h["MVCTL_CHANNEL"], h["MVCTL_VERSION"], h["MVCTL_WEIGHT"]) for h in hooks] == [
        ("canary", "v0.2.0", "50")
    ]


def test_a_stopped_canary_leaves_the_dir_and_its_version_stays(
    reg: Registry, host: Path, tmp_path: Path
) -> None:
    three(reg, host)
    stop_channel(reg, "canary")
    result = serving.pull_channels(request(reg, host))
    canary = result.outcome("canary")
    assert canary is not None and (canary.removed, canary.previous) == (True, "v0.2.0")
    assert list(held(host)) == ["production", "shadow"]
    assert not (host / "channels" / "canary").is_symlink()
    assert "canary" not in json.loads((host / "state.json").read_text())["channels"]
    assert (host / "versions" / "v0.2.0" / "model.bin").read_bytes() == WEIGHTS["v0.2.0"]
    # A poll more: nothing to remove any more; a canary restarted is a local swap.
    again = serving.pull_channels(request(reg, host)).outcome("canary")
    assert again is not None and not again.changed and again.served is None
    shutil.move(reg.storage, tmp_path / "storage-gone")
    assign(reg, "v0.2.0", "canary", weight=5)
    back = serving.pull_channels(request(reg, host)).outcome("canary")
    assert back is not None and back.error is None
    assert (back.changed, back.downloaded, back.version) == (True, False, "v0.2.0")
    assert held(host)["canary"] == ("v0.2.0", 5.0)


def test_blue_green_production_moves_both_ways_locally(
    reg: Registry, host: Path, tmp_path: Path
) -> None:
    three(reg, host, keep=2)
    shutil.move(reg.storage, tmp_path / "storage-gone")
    serve(reg, "v0.2.0")  # the canary's version goes to production: held already
    forward = serving.pull(request(reg, host, keep=2))
    assert (forward.served.version, forward.downloaded) == ("v0.2.0", False)
    serve(reg, "v0.1.0", "rollback")  # and back: the previous production stayed cached
    back = serving.pull(request(reg, host, keep=2))
    assert (back.served.version, back.previous, back.downloaded) == ("v0.1.0", "v0.2.0", False)
    assert (host / "current" / "model.bin").read_bytes() == WEIGHTS["v0.1.0"]
    assert held(host)["production"] == ("v0.1.0", None)


def test_pruning_keeps_every_channels_version(reg: Registry, host: Path) -> None:
    three(reg, host, keep=1)
    serve(reg, "v0.2.0")
    serving.pull_channels(request(reg, host, keep=1))
    # production's previous version is gone (keep 1); what canary and shadow hold stays.
    assert sorted(p.name for p in (host / "versions").iterdir()) == ["v0.2.0", "v0.3.0"]
    state = json.loads((host / "state.json").read_text())
    assert state["recent"] == ["v0.2.0"] and state["history"]["shadow"] == ["v0.3.0"]


def test_a_poll_with_no_change_is_one_git_request(
    reg: Registry, host: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    three(reg, host)
    real = shutil.which("git")
    assert real is not None
    shim = git_shim(tmp_path / "shim", real)
    count = tmp_path / "count"
    monkeypatch.setenv("PATH", f"{shim.parent}:{Path(real).parent}:/usr/bin:/bin")
    monkeypatch.setenv("MVCTL_SHIM_COUNT", str(count))
    result = serving.pull_channels(request(reg, host))
    assert not any(o.changed for o in result.outcomes)
    assert count.read_text().strip() == "1"
    # The CLI's poll, the same.
    count.unlink()
    proc = subprocess.run(pull_argv(reg, host, *flags(*CHANNELS)),
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert count.read_text().strip() == "1"
    assert proc.stdout.count("(no change)") == 3


def test_channels_no_longer_followed_are_removed(reg: Registry, host: Path) -> None:
    three(reg, host)
    result = serving.pull_channels(request(reg, host, "production", "canary"))
    shadow = result.outcome("shadow")
    assert shadow is not None and shadow.removed
    assert list(held(host)) == ["production", "canary"]
    assert not (host / "channels" / "shadow").is_symlink()


def test_a_state_written_by_a_one_channel_host_is_taken_over_without_a_download(
    reg: Registry, host: Path, tmp_path: Path
) -> None:
    serve(reg, "v0.1.0")
    serving.pull(request(reg, host, "production"))
    state = json.loads((host / "state.json").read_text())
    old = {k: v for k, v in state.items() if k not in ("channels", "history")}
    (host / "state.json").write_text(json.dumps(old))
    shutil.rmtree(host / "channels")
    shutil.move(reg.storage, tmp_path / "storage-gone")
    result = serving.pull(request(reg, host, "production"))
    assert (result.changed, result.downloaded) == (False, False)
    assert link(host, "production") == "../versions/v0.1.0"
    entry = json.loads((host / "state.json").read_text())["channels"]["production"]
    assert entry["alias"] == remote_tags(reg.origin)["fraud@production"]
    assert entry["since"] == state["since"]


# --- hostile: alias bodies, planted links, names ------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        '"weight": 1e999',
        '"weight": -5',
        '"weight": true',
        '"weight": 1000',
        '"weight": 0',
        '"weight": "50"',
        '"weight": NaN',
        '"weight": ' + "9" * 5000,
        '"pad": "' + "x" * (2 << 20) + '", "weight": 50',
    ],
    ids=["1e999", "-5", "true", "1000", "0", "a string", "NaN", "5000 digits", "2 MB body"],
)
def test_a_crafted_weight_is_refused_while_production_updates(
    reg: Registry, host: Path, tail: str
) -> None:
    three(reg, host)
    before = set((host / "versions").iterdir())
    # The canary's bad alias on a version that would need a download, production moving on
    # to a version the host holds: the same poll must take production's move.
    retag(reg, "canary", tail, commit=reg.git("rev-parse", "fraud@v0.3.0^{commit}").strip())
    serve(reg, "v0.3.0")
    result = serving.pull_channels(request(reg, host))
    canary = result.outcome("canary")
    assert canary is not None and isinstance(canary.error, RefusedCommit), canary
    assert "refused" in canary.error.message and len(canary.error.message) < 300
    assert held(host) == {
        "production": ("v0.3.0", None),
        "canary": ("v0.2.0", 10.0),
        "shadow": ("v0.3.0", None),
    }
    assert set((host / "versions").iterdir()) == before  # nothing was downloaded for it
    # Refused once: following skips that alias tag until it moves.
    errors = _follow(request(reg, host))
    assert len(errors) == 1 and "refused" in str(errors[0]), errors
    proc = subprocess.run(pull_argv(reg, host, *flags("production", "canary")),
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")] == [
        next(ln for ln in proc.stderr.splitlines() if "refused" in ln)
    ]


def _follow(req: serving.PullRequest, polls: float = 1.0) -> list[Exception]:
    """What follow_channels reports over ``polls`` seconds of 0.05 s polls."""
    import threading

    stop = threading.Event()
    timer = threading.Timer(polls, stop.set)
    timer.start()
    errors: list[Exception] = []
    try:
        serving.follow_channels(
            req,
            interval=0.05,
            stop=stop,
            on_result=lambda r: None,
            on_error=lambda exc, delay: errors.append(exc),
        )
    finally:
        timer.cancel()
    return errors


def test_a_bad_weight_is_refused_before_any_download(reg: Registry, host: Path) -> None:
    serve(reg, "v0.1.0")
    serving.pull_channels(request(reg, host, "production"))
    assign(reg, "v0.2.0", "canary")
    weigh(reg, 1000)
    result = serving.pull_channels(request(reg, host, "production", "canary"))
    canary = result.outcome("canary")
    assert canary is not None and isinstance(canary.error, RefusedCommit)
    assert "weight" in canary.error.message and canary.served is None
    assert [p.name for p in (host / "versions").iterdir()] == ["v0.1.0"]
    assert list(held(host)) == ["production"]


def test_a_malformed_canary_commit_never_stops_production(reg: Registry, host: Path) -> None:
    from tests.serving.test_serving_hostile import MALFORMED

    three(reg, host)
    serve(reg, "v0.3.0")  # first: a publish from the registry would restore its own alias
    clone = reg.root.parent / "attacker"
    git(reg.root.parent, "clone", "-q", str(reg.origin), str(clone))
    git(clone, "checkout", "-q", "--detach", "fraud@v0.3.0^{commit}")
    MALFORMED["weights without size"](clone)
    git(clone, "commit", "-q", "-am", "hostile")
    git(clone, "tag", "-a", "-f", "-m", "fraud@canary -> v0.3.0", "fraud@canary", "HEAD")
    git(clone, "push", "-q", "--force", "origin", "refs/tags/fraud@canary")
    result = serving.pull_channels(request(reg, host))
    canary = result.outcome("canary")
    assert canary is not None and isinstance(canary.error, RefusedCommit)
    assert held(host)["production"] == ("v0.3.0", None)
    assert held(host)["canary"] == ("v0.2.0", 10.0)
    # The one-channel API raises the canary's refusal, after production's swap.
    git(clone, "tag", "-a", "-f", "-m", "fraud@production -> v0.2.0", "fraud@production",
        "fraud@v0.2.0^{commit}")  # fmt: skip
    git(clone, "push", "-q", "--force", "origin", "refs/tags/fraud@production")
    with pytest.raises(RefusedCommit, match="fraud@canary"):
        serving.pull(request(reg, host))
    assert held(host)["production"] == ("v0.2.0", None)


@pytest.mark.parametrize("planted", ["link to /etc", "link elsewhere in DIR", "file", "dir link"])
def test_a_planted_channel_link_is_refused(
    reg: Registry, host: Path, tmp_path: Path, planted: str
) -> None:
    three(reg, host)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    canary = host / "channels" / "canary"
    canary.unlink()
    if planted == "link to /etc":
        canary.symlink_to("/etc")
    elif planted == "link elsewhere in DIR":
        canary.symlink_to("../.mvctl")
    elif planted == "file":
        canary.write_text("not a link")
    else:
        shutil.rmtree(host / "channels")
        (host / "channels").symlink_to(victim)
    listing = sorted((str(p), p.lstat().st_mtime_ns) for p in victim.rglob("*"))
    serve(reg, "v0.2.0")
    proc = subprocess.run(pull_argv(reg, host, *flags("production", "canary")),
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "refusing to follow or replace it" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (host / "current").readlink() == Path("versions/v0.1.0")  # nothing moved
    assert sorted((str(p), p.lstat().st_mtime_ns) for p in victim.rglob("*")) == listing


@pytest.mark.parametrize(
    "channels",
    [("production", "../x"), ("production", "canary/../../etc"), ("production", "production")],
)
def test_a_bad_channel_list_is_a_usage_error(
    reg: Registry, host: Path, channels: tuple[str, ...]
) -> None:
    argv = pull_argv(reg, host, *flags(*channels))
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not host.exists()


@pytest.mark.slow
def test_watch_follows_every_channel(reg: Registry, host: Path, tmp_path: Path) -> None:
    import signal

    from tests.serving.test_serving import _until

    serve(reg, "v0.1.0")
    assign(reg, "v0.2.0", "canary", weight=10)
    log = tmp_path / "hook.log"
    hook = f"{sys.executable} -c \"import os; open('{log}', 'a').write(os.environ['MVCTL_CHANNEL'] + ' ' + os.environ['MVCTL_VERSION'] + ' ' + os.environ['MVCTL_WEIGHT'] + chr(10))\""  # noqa: E501
    argv = pull_argv(reg, host, *flags("production", "canary"), "--watch", "--interval", "0.2")
    proc = subprocess.Popen([*argv, "--on-change", hook], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert _until(lambda: held(host).get("canary") == ("v0.2.0", 10.0))
        share(reg, 25)
        assert _until(lambda: held(host).get("canary") == ("v0.2.0", 25.0))
        stop_channel(reg, "canary")
        assert _until(lambda: list(held(host)) == ["production"])
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "following fraud@production, fraud@canary" in out
    assert "fraud@canary: v0.2.0 at 10% -> v0.2.0 at 25% (from the local cache)" in out
    assert _until(lambda: log.exists() and log.read_text().count("\n") == 4)
    assert log.read_text().splitlines() == [
        "production v0.1.0 ",
        "canary v0.2.0 10",
        "canary v0.2.0 25",
        "canary  ",
    ]


def test_the_cli_reports_every_channel(reg: Registry, host: Path) -> None:
    three(reg, host)
    stop_channel(reg, "canary")
    serve(reg, "v0.3.0")
    argv = pull_argv(reg, host, *flags(*CHANNELS))
    proc = subprocess.run([*argv, "--json"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["version"], report["previous"], report["downloaded"]) == (
        "v0.3.0",
        "v0.1.0",
        False,  # shadow held it
    )
    channels = report["channels"]
    assert list(channels) == list(CHANNELS)
    assert (channels["canary"]["removed"], channels["canary"]["previous"]) == (True, "v0.2.0")
    assert channels["canary"]["previous_weight"] == 10
    assert not channels["shadow"]["changed"]
    serve(reg, "v0.1.0", "rollback")
    lines = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines == [
        f"✓ fraud@production: v0.3.0 -> v0.1.0 (from the local cache) at "
        f"{(host / 'versions' / 'v0.1.0' / 'model.bin').resolve()}",
        "· fraud@canary: serving nothing (no alias)",
        "· fraud@shadow: serving v0.3.0 (no change)",
    ]
