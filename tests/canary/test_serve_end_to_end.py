"""The evidence from a real `mvctl serve`: a weighted canary pulled by `mvctl pull`, served
over real sockets, its decision log (and the outcomes posted to /outcomes) analyzed by
`mvctl canary analyze --apply`, which moves the canary to its next step."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.channels.promotion import promote
from tests.conftest import Registry, mvctl
from tests.web.test_serve import AUTH, MODEL, pull, records, reg, served, template

pytestmark = pytest.mark.slow
__all__ = ["reg", "template"]  # the fixtures, shared with the server's own tests

CANARY = """
    canary:
      steps: [30, 60]
      min_samples: 40
      metrics:
        - {metric: error_rate, primary: true}
        - {metric: latency_p99_ms, max: 5000}
"""


def test_a_served_canary_is_analyzed_and_stepped_from_the_servers_own_log(
    reg: Registry, tmp_path: Path
) -> None:
    config = (reg.root / "mvctl.yaml").read_text()
    reg.write(
        "mvctl.yaml",
        config.replace(
            "    weights: models/iris.skops\n",
            "    weights: models/iris.skops\n" + CANARY.lstrip("\n"),
            1,
        ),
    )
    reg.git("commit", "-q", "-am", "Canary analysis for iris")
    promote(reg.root, MODEL, "v0.1.0", "canary", push=True, weight=30)
    host = tmp_path / "host"
    pull(reg, host, MODEL, "production", "canary")
    served_by = {"production": 0, "canary": 0}
    with served(host) as server, httpx.Client(base_url=server.url, headers=AUTH) as client:
        for i in range(300):
            key = f"user-{i}"
            answer = client.post("/predict", json=records()[:1], headers={"X-Request-Key": key})
            assert answer.status_code == 200, answer.text
            served_by[answer.json()["channel"]] += 1
            prediction = answer.json()["predictions"][0]
            assert client.post("/outcomes", json={"key": key, "outcome": prediction}).is_success
    assert served_by["canary"] >= 40  # 30% of 300 keys, by their hash
    log = host / "decisions.jsonl"
    proc = mvctl(reg.root, "canary", "analyze", MODEL, "--log", str(log), "--apply", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["baseline"]["requests"] == served_by["production"]
    assert report["candidate"]["requests"] == served_by["canary"]
    assert report["candidate"]["labelled"] == served_by["canary"]
    assert set(report["skipped"].values()) == {0}, report["skipped"]  # other: 0, this model
    assert report["verdict"] == "next_step" and report["next_weight"] == 60
    last = channels.load(GitRepo.open(reg.root), MODEL).channel_events("canary")[-1]
    assert last.kind == "weight" and last.weight == 60 and last.evidence is not None
    assert last.evidence["candidate"]["requests"] == served_by["canary"]
