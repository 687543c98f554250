"""A poller's metrics from real polls: what the host serves, what the alias names (known or
not), swaps, errors, the last good sync; and the endpoint that serves them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mvctl import serving
from mvctl.serving.hostmetrics import HostMetrics
from mvctl.serving.metricsserver import MetricsServer
from tests.conftest import Registry, remote_tags
from tests.serving import test_serving as base
from tests.serving.test_serving import object_path, request, serve

template, reg, host = base.template, base.reg, base.host
TOKEN = "metrics-token-for-tests-0123456789"


def value(metrics: HostMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"model": "fraud", **labels})


def test_a_poll_names_the_alias_version_and_counts_the_swap(reg: Registry, host: Path) -> None:
    serve(reg, "v0.1.0")
    metrics = HostMetrics("fraud")
    before = time.time()
    result = serving.pull_channels(request(reg, host))
    metrics.observe(result)
    outcome = result.outcomes[0]
    commit = reg.git("rev-parse", "fraud@production^{commit}").strip()
    assert (outcome.alias_commit, outcome.alias_version) == (commit, "v0.1.0")
    assert result.elapsed > 0
    prod = {"channel": "production"}
    assert value(metrics, "mvctl_served_info", version="v0.1.0", **prod) == 1
    assert value(metrics, "mvctl_alias_info", version="v0.1.0", commit=commit, **prod) == 1
    assert value(metrics, "mvctl_swaps_total", **prod) == 1
    assert value(metrics, "mvctl_swap_duration_seconds_count") == 1
    assert (value(metrics, "mvctl_last_sync_timestamp_seconds") or 0) >= before
    metrics.observe(serving.pull_channels(request(reg, host)))  # no change: no swap
    assert value(metrics, "mvctl_swaps_total", **prod) == 1
    assert value(metrics, "mvctl_swap_duration_seconds_count") == 1


def test_a_host_that_cannot_fetch_the_alias_shows_the_lag(reg: Registry, host: Path) -> None:
    serve(reg, "v0.1.0")
    metrics = HostMetrics("fraud")
    metrics.observe(serving.pull_channels(request(reg, host)))
    synced = value(metrics, "mvctl_last_sync_timestamp_seconds")
    serve(reg, "v0.2.0")
    object_path(reg, "v0.2.0").unlink()  # the new version cannot be downloaded
    result = serving.pull_channels(request(reg, host))
    metrics.observe(result)
    for _ in result.errors:
        metrics.error()
    outcome = result.outcomes[0]
    assert outcome.error is not None and outcome.alias_version is None
    commit = reg.git("rev-parse", "fraud@production^{commit}").strip()
    prod = {"channel": "production"}
    assert value(metrics, "mvctl_served_info", version="v0.1.0", **prod) == 1
    assert value(metrics, "mvctl_alias_info", version="unknown", commit=commit, **prod) == 1
    assert value(metrics, "mvctl_alias_info", version="v0.1.0", commit=commit, **prod) is None
    assert value(metrics, "mvctl_sync_errors_total") == 1
    assert value(metrics, "mvctl_last_sync_timestamp_seconds") == synced  # not a good sync


def test_a_rollback_to_a_kept_version_names_it(reg: Registry, host: Path) -> None:
    serve(reg, "v0.1.0")
    serving.pull_channels(request(reg, host))
    serve(reg, "v0.2.0")
    serving.pull_channels(request(reg, host))
    serve(reg, "v0.1.0", action="rollback")
    result = serving.pull_channels(request(reg, host))
    assert result.outcomes[0].alias_version == "v0.1.0"
    assert result.outcomes[0].alias_commit == (
        reg.git("rev-parse", "fraud@production^{commit}").strip()
    )
    assert "fraud@production" in remote_tags(reg.origin)


def test_without_a_model_the_label_is_left_out() -> None:
    metrics = HostMetrics(None, served=False)
    metrics.error()
    text = metrics.render()[0].decode()
    assert "mvctl_sync_errors_total 1.0" in text and "mvctl_served_info" not in text


@pytest.fixture
def endpoint() -> Iterator[MetricsServer]:
    server = MetricsServer(
        lambda: (b"mvctl_up 1\n", "text/plain"),
        host="127.0.0.1",
        port=0,
        token=TOKEN,
        read_timeout=1.0,
    )
    server.start()
    yield server
    server.close()


@pytest.mark.slow
def test_the_endpoint_needs_the_token(endpoint: MetricsServer) -> None:
    url = "http://{}:{}".format(*endpoint.address)
    assert httpx.get(f"{url}/metrics").status_code == 401
    wrong = {"Authorization": "Bearer " + TOKEN[:-1] + "x"}
    assert httpx.get(f"{url}/metrics", headers=wrong).status_code == 401
    good = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (good.status_code, good.text) == (200, "mvctl_up 1\n")
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert (
        httpx.get(f"{url}/other", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    )


@pytest.mark.slow
def test_a_silent_client_is_dropped(endpoint: MetricsServer) -> None:
    with socket.create_connection(endpoint.address, timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
        started = time.monotonic()
        assert sock.recv(1024) == b""  # the server closed it
        assert time.monotonic() - started < 5


def test_metrics_port_needs_watch_and_a_token(tmp_path: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "mvctl",
        "pull",
        "file:///nowhere",
        "fraud",
        "--dest",
        str(tmp_path / "host"),
    ]
    once = subprocess.run([*argv, "--metrics-port", "9466"], capture_output=True, text=True)
    assert once.returncode == 2 and "--metrics-port goes with --watch" in once.stderr
    env = {k: v for k, v in os.environ.items() if k != "MVCTL_METRICS_TOKEN"}
    watch = subprocess.run(
        [*argv, "--watch", "--metrics-port", "9466"], capture_output=True, text=True, env=env
    )
    assert watch.returncode == 2 and "MVCTL_METRICS_TOKEN" in watch.stderr
