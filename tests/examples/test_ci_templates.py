"""The CI templates of examples/ci/: each file parses; every mvctl command they run exists,
with options that command declares and its required ones given; the JSON fields they read
with jq or Python are in that command's pinned --json shape; the Alertmanager snippet
passes amtool inside a whole config (skipped, with the reason, without amtool)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.test_json_shapes import EXPECTED
from tests.examples.commands import check_command, mvctl_commands

CI = Path(__file__).resolve().parents[2] / "examples" / "ci"
GITHUB = sorted((CI / "github").glob("*.yml"))
GITLAB = CI / "gitlab" / ".gitlab-ci.yml"


def _github_scripts(doc: dict[str, Any]) -> Iterator[str]:
    for job in doc["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                assert isinstance(step["run"], str), step
                yield step["run"]


def _gitlab_scripts(doc: dict[str, Any]) -> Iterator[str]:
    for name, job in doc.items():
        if isinstance(job, dict):
            for key in ("before_script", "script"):
                for item in job.get(key, []):
                    # `- export X="a: b"` is a mapping, not a line: GitLab refuses it.
                    assert isinstance(item, str), f"{name}.{key}: {item!r} is not a string"
                    yield item
        assert name != "image" or isinstance(job, str)


def _scripts() -> list[tuple[str, str]]:
    found = []
    for path in GITHUB:
        found += [(path.name, s) for s in _github_scripts(yaml.safe_load(path.read_text()))]
    found += [(GITLAB.name, s) for s in _gitlab_scripts(yaml.safe_load(GITLAB.read_text()))]
    return found


def test_every_template_parses() -> None:
    assert len(GITHUB) == 4
    for path in GITHUB:
        doc = yaml.safe_load(path.read_text())
        assert doc["jobs"] and (doc.get("on") or doc.get(True)), path.name  # YAML 1.1: on=True
    doc = yaml.safe_load(GITLAB.read_text())
    assert {"train", "review", "apply", "monitor"} <= set(doc)


def test_every_mvctl_command_exists_with_those_flags() -> None:
    seen = set()
    for name, script in _scripts():
        for argv in mvctl_commands(script):
            seen.add((name, check_command(argv)))
    ran = {path for _, path in seen}
    # The whole loop: register, report, propose on training; validate on review; check and
    # apply on merge; monitor with --rollback on a schedule; in both CI systems.
    for system in ("github", "gitlab"):
        names = {n for n, _ in seen if ("gitlab" in n) == (system == "gitlab")}
        assert names, system
    assert {
        "mvctl register",
        "mvctl validate",
        "mvctl propose",
        "mvctl check",
        "mvctl apply",
        "mvctl monitor",
    } <= ran
    monitors = [a for _, s in _scripts() for a in mvctl_commands(s) if a[1] == "monitor"]
    assert monitors and all("--rollback" in a for a in monitors)


def test_the_json_fields_read_exist() -> None:
    """jq -r .manifest.version registered.json, .branch and .path of proposal.json, and the
    same read from Python on GitLab: each must be in the command's pinned --json shape."""
    text = "\n".join(p.read_text() for p in [*GITHUB, GITLAB])
    register = EXPECTED["register"]
    propose = EXPECTED["propose"]
    assert "version" in register["manifest"] and ".manifest.version registered.json" in text
    assert '["manifest"]["version"]' in text
    for field in ("branch", "path"):
        assert field in propose
    assert "jq -r .branch proposal.json" in text and "jq -r .path proposal.json" in text
    assert '["branch"]' in text


def test_no_template_writes_a_credential_into_git() -> None:
    for path in [*GITHUB, GITLAB]:
        text = path.read_text()
        assert not re.search(r"https://[^\s\"']*:\$\{?\w*TOKEN", text), path.name
        assert "credential.helper store" not in text


def test_alertmanager_snippet_is_a_valid_route(tmp_path: Path) -> None:
    snippet = yaml.safe_load((CI / "alertmanager.yml").read_text())
    receiver = snippet["receivers"][0]
    hook = receiver["webhook_configs"][0]
    assert hook["url"].endswith("/alerts")
    assert hook["http_config"]["authorization"]["credentials_file"]
    assert snippet["route"]["routes"][0]["receiver"] == receiver["name"]
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed (apt-get install prometheus-alertmanager)")
    token = tmp_path / "mvctl-webhook.token"
    token.write_text("t0ken-for-the-check\n")
    hook["http_config"]["authorization"]["credentials_file"] = str(token)
    whole = {
        "route": {"receiver": "null", **snippet["route"]},
        "receivers": [{"name": "null"}, receiver],
    }
    config = tmp_path / "alertmanager.yml"
    config.write_text(yaml.safe_dump(whole))
    done = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
