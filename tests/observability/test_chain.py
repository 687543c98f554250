"""Prometheus -> Alertmanager -> webhook -> rollback -> hosts, with the real binaries on
loopback: a registry with v1 then v2 in production (v2 fails every request), a host that
`mvctl pull --watch` keeps and `mvctl serve` serves under load, `mvctl webhook serve` in
the registry, Prometheus and Alertmanager on the example folder's own files. The error-rate
alert must roll production back exactly once, the host must swap back to v1, and the lag
alert must stay silent after."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Registry, RegistryFactory, Release, copy_registry, mvctl, run
from tests.observability.examples import TOKENS, Ports, laid_out

pytestmark = pytest.mark.slow

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
ROOT = Path(__file__).resolve().parents[2]
LOADER = "tests.observability.chain_model:load"
V1, V2 = "v1.0.0", "v2.0.0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(check: Callable[[], bool], what: str, logs: Callable[[], str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    assert check(), f"timed out waiting for {what}\n{logs()}"


@contextmanager
def _process(argv: list[str], log: Path, env: dict[str, str], cwd: Path) -> Iterator[None]:
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        try:
            yield
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.get(url, headers=headers, timeout=2)
    except httpx.TransportError:
        return None
    return answer.json() if answer.status_code == 200 else None


class Load:
    """A bounded stream of inference requests in a thread; remembers the versions answered."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.stop = threading.Event()
        self.answered: list[str] = []
        self.failed = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
        headers = {"Authorization": f"Bearer {self.token}"}
        deadline = time.monotonic() + 110
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    answer = client.post(self.url, json=body, headers=headers)
                except httpx.TransportError:
                    self.failed += 1
                else:
                    if answer.status_code == 200:
                        self.answered.append(answer.json()["model_version"])
                    else:
                        self.failed += 1
                self.stop.wait(0.02)  # about 40 requests/s: a steady rate for rate()


@pytest.fixture
def reg(registry_factory: RegistryFactory, tmp_path: Path) -> Registry:
    template = registry_factory(
        Release(weights=b"ok-v1", version=V1, promote=("production",), push=True),
        Release(weights=b"fail-v2", version=V2, promote=("production",), push=True),
    )
    return copy_registry(template, tmp_path, storage=False)


@pytest.mark.skipif(
    PROMETHEUS is None or ALERTMANAGER is None,
    reason="prometheus and prometheus-alertmanager are not installed "
    "(apt-get install prometheus prometheus-alertmanager)",
)
def test_error_rate_alert_rolls_back_once_and_hosts_follow(reg: Registry, tmp_path: Path) -> None:
    assert PROMETHEUS is not None and ALERTMANAGER is not None
    ports = Ports(_free_port(), _free_port(), _free_port(), _free_port())
    prom_port = _free_port()
    tokens = {name: f"{name}-token-for-the-chain-0123456789" for name in TOKENS}
    folder = laid_out(tmp_path, ports, tokens)
    host, logs = tmp_path / "host", tmp_path / "logs"
    logs.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MVCTL_SERVE_TOKEN": tokens["serve"],
        "MVCTL_METRICS_TOKEN": tokens["metrics"],
        "MVCTL_WEBHOOK_TOKEN": tokens["webhook"],
    }
    origin, storage = str(reg.origin), str(reg.storage)
    first = mvctl(tmp_path, "pull", origin, "fraud", "--dest", str(host), "--dvc-remote", storage)
    assert first.returncode == 0, first.stderr

    def all_logs() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.iterdir()))

    mv = [sys.executable, "-m", "mvctl"]
    prom = f"http://127.0.0.1:{prom_port}"
    with ExitStack() as stack:
        for name, argv, cwd in (
            (
                "pull",
                [
                    *mv,
                    "pull",
                    origin,
                    "fraud",
                    "--dest",
                    str(host),
                    "--dvc-remote",
                    storage,
                    "--watch",
                    "--interval",
                    "1",
                    "--metrics-port",
                    str(ports.pull),
                ],
                tmp_path,
            ),
            (
                "serve",
                [*mv, "serve", str(host), "--port", str(ports.serve), "--loader", LOADER],
                tmp_path,
            ),
            ("webhook", [*mv, "webhook", "serve", "--port", str(ports.webhook)], reg.root),
            (
                "alertmanager",
                [
                    ALERTMANAGER,
                    "--config.file=alertmanager.yml",
                    f"--storage.path={tmp_path / 'am'}",
                    f"--web.listen-address=127.0.0.1:{ports.alertmanager}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                folder,
            ),
            (
                "prometheus",
                [
                    PROMETHEUS,
                    "--config.file=prometheus.yml",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--log.level=warn",
                ],
                folder,
            ),
        ):
            stack.enter_context(_process(argv, logs / f"{name}.log", env, cwd))

        serve = f"http://127.0.0.1:{ports.serve}"
        _until(lambda: _get(f"{serve}/v2/health/ready") is not None, "mvctl serve", all_logs, 30)
        load = Load(f"{serve}/v2/models/fraud/infer", tokens["serve"])
        load.thread.start()
        stack.callback(load.thread.join, 10)
        stack.callback(load.stop.set)

        def targets_up() -> bool:
            answer = _get(f"{prom}/api/v1/targets")
            active = answer["data"]["activeTargets"] if answer else []
            return len(active) == 2 and all(t["health"] == "up" for t in active)

        _until(targets_up, "both scrape targets up (bearer tokens accepted)", all_logs, 30)

        def history() -> list[dict[str, Any]]:
            clone = tmp_path / f"clone-{time.monotonic_ns()}"
            run("git", "clone", "-q", origin, clone, cwd=tmp_path)
            done = mvctl(clone, "history", "fraud", "--json")
            assert done.returncode == 0, done.stderr
            shutil.rmtree(clone)
            events: list[dict[str, Any]] = json.loads(done.stdout)["events"]
            return events

        def rollbacks() -> list[dict[str, Any]]:
            return [e for e in history() if e["kind"] == "rollback"]

        # The alert fires on v2's errors, Alertmanager sends it, the webhook rolls back.
        _until(lambda: bool(rollbacks()), "the webhook's rollback on the remote", all_logs, 60)
        # The host swaps back: requests are answered by v1 again.
        _until(lambda: V1 in load.answered[-5:], "the host serving v1 again", all_logs, 30)

        # What the lag rule compares is there, and agrees: alias and served are v1.
        def lag_inputs_agree() -> bool:
            query = _get(f"{prom}/api/v1/query?query=mvctl_alias_info")
            alias = [r["metric"]["version"] for r in query["data"]["result"]] if query else []
            query = _get(f"{prom}/api/v1/query?query=mvctl_served_info")
            served = [r["metric"]["version"] for r in query["data"]["result"]] if query else []
            return alias == [V1] and served.count(V1) == 2 and V2 not in served

        _until(lag_inputs_agree, "alias and served both v1 in Prometheus", all_logs, 30)

        def rules_evaluated_after(moment: float) -> bool:
            answer = _get(f"{prom}/api/v1/rules")
            rules = [
                r for g in (answer or {}).get("data", {}).get("groups", []) for r in g["rules"]
            ]
            lag = [r for r in rules if r["name"] == "MvctlHostLagsAlias"]
            return (
                bool(lag) and lag[0]["health"] == "ok" and _epoch(lag[0]["lastEvaluation"]) > moment
            )

        agreed = time.time()
        _until(lambda: rules_evaluated_after(agreed), "the lag rule evaluated", all_logs, 10)
        alerts = _get(f"{prom}/api/v1/alerts")["data"]["alerts"]
        assert not [a for a in alerts if a["labels"]["alertname"] == "MvctlHostLagsAlias"], alerts

        # Exactly one rollback, to v1, by the alert, even while it kept firing and repeating.
        events = rollbacks()
        assert len(events) == 1, events
        assert events[0]["version"] == V1 and events[0]["previous"] == V2
        assert events[0]["incident"] and events[0]["alerts"], events[0]
        assert len([e for e in history() if e["channel"] == "production"]) == 3
        swaps = _get(f"{prom}/api/v1/query?query=mvctl_swaps_total")["data"]["result"]
        assert [(r["metric"]["job"], r["value"][1]) for r in swaps] == [("mvctl-pull", "1")]
        assert load.answered.count(V2) == 0  # v2 never answered: all its requests failed
        assert load.failed > 0


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")[:26] + "+00:00").timestamp()
