"""Every command's --json output is a contract: its keys, nested, and the type of each value.

One registry is built for the module and every command runs once on it, in the order a user
would (register, promote, roll back, propose and apply, pull on a host, monitor), each output
recorded. Each test then compares one command's output with the shape pinned below. Values
(hashes, times, paths) vary from run to run; keys and types must not change silently.

A failing test means a JSON contract changed: if on purpose, update the shape here and say
so in the changelog.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mvctl.cli.app import app
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, git, isolate, run

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    gates:
      production:
        - {metric: auc, min: 0.90}
    monitors:
      production:
        - {metric: false_positive_rate, max: 0.05}
"""


# Objects keyed by data rather than by a schema (package names): pinned as one "*" key.
KEYED_BY_DATA = {"packages"}


def shape(value: Any) -> Any:
    """Keys and value types, recursively. A list's shape is the merged shape of its items
    (``[]`` when empty); a type that varies between items is written "null|str"."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: list[Any] = []
        for item in value:
            merged = [merge(merged[0], shape(item))] if merged else [shape(item)]
        return merged
    return "null" if value is None else type(value).__name__


def merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return {key: merge(a[key], b[key]) for key in a}
    if isinstance(a, list) and isinstance(b, list):
        return [merge(a[0], b[0])] if a and b else a or b
    if isinstance(a, str) and isinstance(b, str):
        return "|".join(sorted(set(a.split("|")) | set(b.split("|"))))
    return a if a == b else {"one of": [a, b]}


def collapse(value: Any) -> Any:
    """The shape, with each KEYED_BY_DATA object reduced to its merged values under "*"."""
    if isinstance(value, dict):
        return {
            key: {"*": merge_all(item.values())}
            if key in KEYED_BY_DATA and isinstance(item, dict)
            else collapse(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [collapse(item) for item in value]
    return value


def merge_all(shapes: Any) -> Any:
    merged: Any = None
    for item in shapes:
        merged = item if merged is None else merge(merged, item)
    return merged


def invoke(outputs: dict[str, Any], name: str, *args: str) -> None:
    result = CliRunner().invoke(app, [*args, "--json"])
    try:
        outputs[name] = json.loads(result.stdout)
    except ValueError:
        outputs[name] = f"exit {result.exit_code}: {result.output} {result.exception!r}"


@pytest.fixture(scope="module")
def outputs(
    registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Each command's parsed --json output (or, if it printed none, why), by name."""
    template = registry_factory(
        Release(weights=b"one", auc=0.91, push=True),
        Release(weights=b"two", auc=0.92, push=True),
        config=CONFIG,
    )
    tmp = tmp_path_factory.mktemp("shapes")
    got: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as mp:
        (tmp / "home").mkdir()
        isolate(mp, tmp / "home")
        reg = copy_registry(template, tmp)
        fresh = tmp / "fresh"
        run("git", "init", "-q", "-b", "main", fresh, cwd=tmp)
        git(fresh, "commit", "-q", "--allow-empty", "-m", "initial")
        mp.chdir(fresh)
        invoke(got, "init", "init", "--storage", str(tmp / "fresh-storage"))

        mp.chdir(reg.root)
        _commands(reg, tmp, got)
    return got


def _commands(reg: Registry, tmp: Path, got: dict[str, Any]) -> None:
    reg.train(weights=b"three", auc=0.93)
    invoke(
        got,
        "register",
        *("register", "fraud", "-w", "models/model.bin", "--data", "data/train.csv"),
        *("--metrics", "metrics.json"),
    )
    invoke(got, "list", "list")
    invoke(got, "label", "label", "fraud@v0.1.0", "season=holiday", "--description", "Q4")
    invoke(got, "list MODEL", "list", "fraud")
    invoke(got, "show", "show", "fraud@v0.2.0")
    invoke(got, "lineage", "lineage", "fraud")
    invoke(got, "diff", "diff", "fraud", "v0.1.0", "v0.2.0")
    invoke(got, "validate", "validate", "fraud", "v0.2.0", "--channel", "production")
    invoke(got, "mark-gold", "mark-gold", "fraud", "v0.1.0", "--reason", "baseline")
    invoke({}, "first promote", "promote", "fraud", "v0.1.0", "--to", "production")
    invoke(got, "promote", "promote", "fraud", "v0.2.0", "--to", "production")
    invoke(got, "rollback", "rollback", "fraud", "--reason", "incident")
    select = ("--select", "label season=holiday")
    invoke(got, "promote --select", "promote", "fraud", "--to", "production", *select)
    invoke({}, "canary promote", "promote", "fraud", "v0.1.0", "--to", "canary", "--weight", "5")
    invoke(got, "canary weight", "canary", "weight", "fraud", "12.5", "--reason", "step")
    decisions = tmp / "decisions.jsonl"
    line = {"time": "2030-01-01T00:00:00.000Z", "key": "k", "model": "fraud", "latency_ms": 1.5}
    line["output"] = [0]
    decisions.write_text(
        json.dumps(line | {"channel": "production", "version": "v0.1.0", "role": "primary"})
        + "\n"
        + json.dumps(line | {"channel": "canary", "version": "v0.1.0", "role": "canary"})
        + "\n"
    )
    invoke(got, "canary analyze", "canary", "analyze", "fraud", "--log", str(decisions))
    invoke(got, "canary stop", "canary", "stop", "fraud", "--reason", "done")
    invoke(got, "history", "history", "fraud")
    # Kept local, so that status and push have a tag to report.
    invoke(got, "retire", "retire", "fraud", "v0.3.0", "--reason", "superseded", "--local")
    invoke(got, "sync", "sync")
    invoke(got, "status", "status")
    invoke(got, "push", "push")
    invoke(got, "propose", "propose", "fraud", "v0.2.0", "--to", "staging", "--reason", "try")
    branch = got["propose"]["branch"] if isinstance(got["propose"], dict) else "missing"
    reg.git("merge", "-q", "--no-ff", "--no-edit", branch)
    invoke(got, "apply", "apply")
    invoke(got, "unassign", "unassign", "fraud", "-c", "staging", "--reason", "trial over")
    invoke(got, "check", "check", "--remote", "origin")

    host = tmp / "host"
    pull = ("pull", str(reg.origin), "fraud", "--dest", str(host))
    invoke(got, "pull", *pull, "--dvc-remote", str(reg.storage))
    invoke(got, "pull --status", "pull", "--dest", str(host), "--status")
    got_at = ("--out", str(tmp / "got.bin"), "--dvc-remote", str(reg.storage))
    invoke(got, "get", "get", "fraud@production", "--repo", str(reg.origin), *got_at)

    live = tmp / "live-metrics.json"
    live.write_text(json.dumps({"false_positive_rate": 0.01}))
    invoke(got, "monitor", "monitor", "fraud", "--metrics", str(live))
    # Last: a dry run keeping nothing it need not. v0.3.0, retired above, would be pruned
    # once the workspace tracks other weights than its own.
    reg.write("models/model.bin", b"four")
    run("dvc", "add", "-q", "models/model.bin", cwd=reg.root)
    invoke(got, "gc", "gc", "fraud", "--keep-gold", "0", "--keep-recent", "0")


# What register and show print under "manifest" (formats/manifest.py's schema).
MANIFEST: dict[str, Any] = {
    "schema": "str",
    "model": "str",
    "version": "str",
    "created": "str",
    "author": "str",
    "description": "str",
    "labels": [],
    "parent": "str",
    "weights": [{"path": "str", "md5": "str", "sha256": "str", "size": "int"}],
    "dataset": [{"path": "str", "md5": "str", "size": "int", "nfiles": "int"}],
    "environment": {"python": "str", "platform": "str", "packages": {"*": "str"}},
    "metrics": {"auc": "float", "loss": {"train": "float", "val": "float"}},
    "params": {},
    "code": {"commit": "str", "dirty": "bool"},
    "profile": {"path": "str", "source": "str", "sha256": "str"},
}

EXPECTED: dict[str, Any] = {
    "init": {
        "root": "str",
        "dvc_initialised": "bool",
        "config_written": "bool",
        "remote": {"name": "str", "url": "str"},
        "remote_configured": "bool",
        "commit": "str",
        "dry_run": "bool",
    },
    "register": {
        "tag": "str",
        "commit": "str",
        "pushed": "bool",
        "remote": "str",
        "published": ["str"],
        "dry_run": "bool",
        "manifest": MANIFEST,
    },
    "list": {
        "models": [
            {"model": "str", "latest": "str", "versions": "int", "channels": {}, "weights": {}}
        ]
    },
    "label": {
        "model": "str",
        "version": "str",
        "tag": "str",
        "labels": ["str"],
        "description": "str",
        "previous_labels": [],
        "previous_description": "str",
        "changed": "bool",
        "notes": [],
        "pushed": "bool",
        "remote": "str",
        "published": ["str"],
        "dry_run": "bool",
    },
    "list MODEL": {
        "model": "str",
        "filters": {"labels": [], "metrics": [], "channel": "null"},
        "versions": [
            {
                "model": "str",
                "version": "str",
                "commit": "str",
                "created": "str",
                "author": "str",
                "metrics": {"auc": "float", "loss.train": "float", "loss.val": "float"},
                "deregistered": "bool",
                "channels": [],
                "weights": {},
                "labels": ["str"],
                "description": "str",
                "data_window": "null",
                "labels_tag": "null|str",
                "status": "null",
                "standing": {},
                "served": [],
            }
        ],
    },
    "show": {
        "model": "str",
        "version": "str",
        "commit": "str",
        "created": "str",
        "author": "str",
        "metrics": {"auc": "float", "loss.train": "float", "loss.val": "float"},
        "deregistered": "bool",
        "channels": [],
        "weights": {},
        "manifest": MANIFEST,
    },
    "lineage": {
        "model": "str",
        "focus": "null",
        "roots": ["str"],
        "versions": [
            {
                "version": "str",
                "commit": "str",
                "parent": "null|str",
                "children": ["str"],
                "channels": [],
                "metrics": {"auc": "float", "loss.train": "float", "loss.val": "float"},
                "created": "str",
                "deregistered": "bool",
                "summary": "str",
            }
        ],
    },
    "diff": {
        "model": "str",
        "old": {"version": "str", "commit": "str", "channels": []},
        "new": {"version": "str", "commit": "str", "channels": []},
        "identical": "bool",
        "weights": [
            {
                "path": "str",
                "status": "str",
                "old_hash": "str",
                "new_hash": "str",
                "old_size": "int",
                "new_size": "int",
                "files_added": [],
                "files_removed": [],
                "files_modified": [],
            }
        ],
        "dataset": [
            {
                "path": "str",
                "status": "str",
                "old_hash": "str",
                "new_hash": "str",
                "old_size": "int",
                "new_size": "int",
                "files_added": [],
                "files_removed": [],
                "files_modified": [],
            }
        ],
        "params": [],
        "environment": [],
        "packages": [],
        "metrics": [
            {"key": "str", "old": "float", "new": "float", "delta": "float", "relative": "float"}
        ],
        "code": [],
        "notes": [],
    },
    "validate": {
        "model": "str",
        "version": "str",
        "channel": "str",
        "holder": "null",
        "passed": "bool",
        "gates": [{"gate": "str", "ok": "bool", "detail": "str"}],
    },
    "mark-gold": {
        "model": "str",
        "version": "str",
        "tag": "str",
        "reason": "str",
        "pushed": "bool",
        "remote": "str",
        "published": ["str"],
        "dry_run": "bool",
    },
    "promote": {
        "model": "str",
        "channel": "str",
        "version": "str",
        "previous": "str",
        "kind": "str",
        "event": "str",
        "reason": "str",
        "actor": "str",
        "time": "str",
        "gates": {
            "model": "str",
            "version": "str",
            "channel": "str",
            "holder": "str",
            "passed": "bool",
            "gates": [{"gate": "str", "ok": "bool", "detail": "str"}],
        },
        "request": "null",
        "incident": "null",
        "pushed": "bool",
        "remote": "str",
        "completed": "bool",
        "published": ["str"],
        "dry_run": "bool",
        "changed": "bool",
        "note": "str",
        "alerts": [],
        "weight": "null",
        "previous_weight": "null",
    },
    "promote --select": {
        "model": "str",
        "channel": "str",
        "version": "str",
        "previous": "str",
        "kind": "str",
        "event": "str",
        "reason": "str",
        "actor": "str",
        "time": "str",
        "gates": {
            "model": "str",
            "version": "str",
            "channel": "str",
            "holder": "str",
            "passed": "bool",
            "gates": [{"gate": "str", "ok": "bool", "detail": "str"}],
        },
        "request": "null",
        "incident": "null",
        "pushed": "bool",
        "remote": "str",
        "completed": "bool",
        "published": [],  # v0.1.0 holds production and matches: nothing to publish
        "dry_run": "bool",
        "changed": "bool",
        "note": "str",
        "alerts": [],
        "weight": "null",
        "previous_weight": "null",
        "selected": ["str"],
    },
    "rollback": {
        "model": "str",
        "channel": "str",
        "version": "str",
        "previous": "str",
        "kind": "str",
        "event": "str",
        "reason": "str",
        "actor": "str",
        "time": "str",
        "gates": "null",
        "request": "null",
        "incident": "null",
        "pushed": "bool",
        "remote": "str",
        "completed": "bool",
        "published": ["str"],
        "dry_run": "bool",
        "changed": "bool",
        "note": "str",
        "alerts": [],
        "weight": "null",
        "previous_weight": "null",
    },
    "canary weight": {
        "model": "str",
        "channel": "str",
        "version": "str",
        "previous": "str",
        "kind": "str",
        "event": "str",
        "reason": "str",
        "actor": "str",
        "time": "str",
        "gates": "null",
        "request": "null",
        "incident": "null",
        "pushed": "bool",
        "remote": "str",
        "completed": "bool",
        "published": ["str"],
        "dry_run": "bool",
        "changed": "bool",
        "note": "str",
        "alerts": [],
        "weight": "float",
        "previous_weight": "int",
    },
    "canary analyze": {
        "model": "str",
        "channel": "str",
        "baseline": {
            "channel": "str",
            "version": "str",
            "requests": "int",
            "errors": "int",
            "labelled": "int",
        },
        "candidate": {
            "channel": "str",
            "version": "str",
            "requests": "int",
            "errors": "int",
            "labelled": "int",
        },
        "weight": "float",
        "steps": [],
        "alpha": "float",
        "min_samples": "int",
        "max_failed": "int",
        "tests": "int",
        "step_requests": "int",
        "metrics": [
            {
                "metric": "str",
                "guarded": "bool",
                "primary": "bool",
                "baseline": "float",
                "candidate": "float",
                "n_baseline": "int",
                "n_candidate": "int",
                "worse": {
                    "one of": [
                        {
                            "one of": [
                                {
                                    "one of": [
                                        {
                                            "one of": [
                                                {
                                                    "kind": "str",
                                                    "direction": "str",
                                                    "n_baseline": "int",
                                                    "n_candidate": "int",
                                                    "estimate": "float",
                                                    "half_width": "float",
                                                    "p_value": "float",
                                                    "checks": "int",
                                                },
                                                "null",
                                            ]
                                        },
                                        "null",
                                    ]
                                },
                                "null",
                            ]
                        },
                        "null",
                    ]
                },
                "better": {
                    "one of": [
                        {
                            "one of": [
                                {
                                    "one of": [
                                        {
                                            "one of": [
                                                {
                                                    "kind": "str",
                                                    "direction": "str",
                                                    "n_baseline": "int",
                                                    "n_candidate": "int",
                                                    "estimate": "float",
                                                    "half_width": "float",
                                                    "p_value": "float",
                                                    "checks": "int",
                                                },
                                                "null",
                                            ]
                                        },
                                        "null",
                                    ]
                                },
                                "null",
                            ]
                        },
                        "null",
                    ]
                },
                "p_worse": "float|null",
                "p_better": "float|null",
                "bound": {},
                "failed_checks": "int",
                "windows": "int",
                "verdict": "str",
            }
        ],
        "skipped": {
            "malformed": "int",
            "too_long": "int",
            "other": "int",
            "unjoined": "int",
            "duplicate": "int",
        },
        "files": ["str"],
        "verdict": "str",
        "next_weight": "null",
        "reasons": ["str"],
        "applied": "null",
    },
    "canary stop": {
        "model": "str",
        "channel": "str",
        "version": "str",
        "previous": "str",
        "kind": "str",
        "event": "str",
        "reason": "str",
        "actor": "str",
        "time": "str",
        "gates": "null",
        "request": "null",
        "incident": "null",
        "pushed": "bool",
        "remote": "str",
        "completed": "bool",
        "published": ["str"],
        "dry_run": "bool",
        "changed": "bool",
        "note": "str",
        "alerts": [],
        "weight": "null",
        "previous_weight": "float",
    },
    "unassign": {
        "model": "str",
        "channel": "str",
        "version": "str",
        "previous": "str",
        "kind": "str",
        "event": "str",
        "reason": "str",
        "actor": "str",
        "time": "str",
        "gates": "null",
        "request": "null",
        "incident": "null",
        "pushed": "bool",
        "remote": "str",
        "completed": "bool",
        "published": ["str"],
        "dry_run": "bool",
        "changed": "bool",
        "note": "str",
        "alerts": [],
        "weight": "null",
        "previous_weight": "null",
    },
    "history": {
        "model": "str",
        "events": [
            {
                "event": "str",
                "counter": "int",
                "channel": "str",
                "kind": "str",
                "version": "str",
                "previous": "null|str",
                "reason": "str",
                "actor": "str",
                "time": "str",
                "commit": "str",
                "gates": [{"gate": "str", "ok": "bool", "detail": "str"}],
                "request": "null",
                "incident": "null",
                "alerts": [],
                "weight": "float|int|null",
                "previous_weight": "float|int|null",
            }
        ],
    },
    "retire": {
        "model": "str",
        "version": "str",
        "tag": "str",
        "reason": "str",
        "pushed": "bool",
        "remote": "null",
        "published": [],
        "dry_run": "bool",
    },
    "gc": {
        "models": ["str"],
        "policies": {"fraud": {"keep_gold": "int", "keep_recent": "int"}},
        "versions": [
            {
                "model": "str",
                "version": "str",
                "action": "str",
                "keep": "bool",
                "reasons": ["str"],
                "bytes": "int",
                "objects": [{"oid": "str", "bytes": "int", "remote": "bool", "cache": "bool"}],
                "deregister": "bool",
            }
        ],
        "totals": {"versions": "int", "objects": "int", "bytes": "int"},
        "dry_run": "bool",
        "remote": "str",
        "pushed": "bool",
        "published": [],
        "tags": [],
        "deleted": "int",
    },
    "sync": {
        "remote": "str",
        "created": [],
        "moved": [],
        "kept": [],
        "conflicts": [],
        "discarded": [],
    },
    "status": {
        "remote": "str",
        "tags": ["str"],
        "aliases": [],
        "deletions": [],
        "conflicts": [],
    },
    "push": {"remote": "str", "pushed": ["str"], "moved_forward": [], "dry_run": "bool"},
    "propose": {
        "request": "str",
        "branch": "str",
        "commit": "str",
        "path": "str",
        "gates": {
            "model": "str",
            "version": "str",
            "channel": "str",
            "holder": "null",
            "passed": "bool",
            "gates": [],
        },
        "pushed": "bool",
        "dry_run": "bool",
    },
    "apply": {
        "requests": [
            {
                "request": "str",
                "model": "str",
                "version": "str",
                "channel": "str",
                "status": "str",
                "detail": "str",
            }
        ]
    },
    "check": {
        "ok": "bool",
        "models": "int",
        "versions": "int",
        "events": "int",
        "problems": [],
        "notes": [],
    },
    "pull": {
        "model": "str",
        "channel": "str",
        "version": "str",
        "commit": "str",
        "path": "str",
        "since": "str",
        "repo": "str",
        "kept": ["str"],
        "previous": "null",
        "changed": "bool",
        "downloaded": "bool",
        "hook": "null",
        "channels": {
            "production": {
                "channel": "str",
                "version": "str",
                "weight": "null",
                "since": "str",
                "path": "str",
                "previous": "null",
                "previous_weight": "null",
                "changed": "bool",
                "downloaded": "bool",
                "removed": "bool",
                "empty": "bool",
                "error": "null",
                "hook": "null",
            }
        },
    },
    "pull --status": {
        "model": "str",
        "channel": "str",
        "version": "str",
        "commit": "str",
        "path": "str",
        "since": "str",
        "repo": "str",
        "kept": ["str"],
        "channels": {
            "production": {
                "channel": "str",
                "version": "str",
                "commit": "str",
                "dir": "str",
                "path": "str",
                "since": "str",
                "weight": "null",
            }
        },
    },
    "get": {
        "model": "str",
        "version": "str",
        "channel": "str",
        "commit": "str",
        "path": "str",
        "sha256": "str",
        "md5": "str",
        "bytes": "int",
    },
    "monitor": {
        "model": "str",
        "channel": "str",
        "version": "str",
        "breached": "bool",
        "results": [
            {
                "rule": "str",
                "level": "str",
                "value": "float",
                "detail": "str",
                "source": "str",
                "registered": "null",
                "rows": "null",
                "bounds": [
                    {
                        "key": "str",
                        "given": "float",
                        "limit": "float",
                        "ok": "bool",
                        "compared": "float",
                    }
                ],
            }
        ],
        "drift": [],
        "bias": [],
        "rollback": "null",
        "rollback_error": "null",
        "notes": [],
    },
}


@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_json_shape(outputs: dict[str, Any], command: str) -> None:
    assert isinstance(outputs[command], dict | list), outputs[command]
    assert collapse(shape(outputs[command])) == EXPECTED[command]


def test_every_recorded_command_is_pinned(outputs: dict[str, Any]) -> None:
    assert sorted(outputs) == sorted(EXPECTED)
