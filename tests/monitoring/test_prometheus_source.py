"""mvctl monitor on live metrics from Prometheus: a saved query API response as --metrics
(fast), the real Prometheus's HTTP API with --prometheus --query (slow), and hostile
answers (a failed query, NaN, two series, a redirect) as one-line exit-3 errors."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mvctl.errors import MvctlError, OperationalError
from mvctl.formats import queryapi
from mvctl.formats.queryapi import Query, parse_query
from mvctl.monitoring.live import PrometheusSource, from_prometheus
from tests.conftest import Registry, mvctl
from tests.monitoring import test_monitoring as base

template, reg = base.template, base.reg
FPR = "false_positive_rate"


def vector(*series: tuple[dict[str, str], str]) -> dict[str, Any]:
    result = [{"metric": labels, "value": [1700000000.0, value]} for labels, value in series]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.mark.parametrize(
    ("option", "name", "promql"),
    [
        ("fpr=rate(x[1m])", "fpr", "rate(x[1m])"),
        ('val.auc=max(auc{channel="production"})', "val.auc", 'max(auc{channel="production"})'),
        (
            'mvctl_requests_total{channel="production"}',
            None,
            'mvctl_requests_total{channel="production"}',
        ),
        ("up == 1", None, "up == 1"),
        ("up==1", None, "up==1"),
    ],
)
def test_a_query_is_named_only_by_a_leading_name_and_one_equals_sign(
    option: str, name: str | None, promql: str
) -> None:
    assert parse_query(option) == Query(name, promql)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"status": "error", "errorType": "bad_data", "error": "parse error"}, "parse error"),
        (vector(({}, "NaN")), "NaN"),
        (vector(({}, "+Inf")), "+Inf"),
        (vector(({"a": "1"}, "0.1"), ({"a": "2"}, "0.2")), "more than one series"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "instant vector"),
        (vector(({}, "zero")), "not a number"),
        (
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
            "time",
        ),
        ([1, 2], "not a Prometheus query API response"),
    ],
)
def test_a_hostile_answer_is_an_operational_error(answer: Any, says: str) -> None:
    with pytest.raises(OperationalError, match=None) as caught:
        queryapi.values_of(Query(FPR, "q"), answer, "the answer")
    assert says in caught.value.message and caught.value.exit_code == 3


def test_an_empty_vector_is_no_evidence_and_names_come_from_the_series() -> None:
    assert queryapi.values_of(Query(FPR, "q"), vector(), "a") == {}
    named = vector(({"__name__": FPR, "job": "x"}, "0.25"))
    assert queryapi.values_of(Query(None, "q"), named, "a") == {FPR: 0.25}
    with pytest.raises(OperationalError, match="no metric name"):
        queryapi.values_of(Query(None, "q"), vector(({}, "0.25")), "a")


def test_decode_refuses_big_and_non_json_answers() -> None:
    with pytest.raises(OperationalError, match="larger than"):
        queryapi.decode(b" " * (queryapi.MAX_RESPONSE_BYTES + 1), "x")
    with pytest.raises(OperationalError, match="not valid JSON"):
        queryapi.decode(b'{"a": NaN}', "x")


def test_a_saved_response_breaches_like_a_metrics_file(reg: Registry, tmp_path: Path) -> None:
    saved = tmp_path / "fpr.json"
    saved.write_text(json.dumps({FPR: vector(({"channel": "production"}, "0.2"))}))
    done = mvctl(reg.root, "monitor", "fraud", "--metrics", str(saved), "--json")
    assert done.returncode == 1, done.stderr
    results = json.loads(done.stdout)["results"]
    assert [(r["rule"], r["level"]) for r in results][-1] == (f"{FPR} <= 0.05", "breach")
    named = tmp_path / "named.json"  # one response, named by __name__ (a recording rule)
    named.write_text(json.dumps(vector(({"__name__": FPR}, "0.01"))))
    assert mvctl(reg.root, "monitor", "fraud", "--metrics", str(named)).returncode == 0


def test_a_saved_error_response_is_exit_3(reg: Registry, tmp_path: Path) -> None:
    saved = tmp_path / "error.json"
    saved.write_text(
        json.dumps({"status": "error", "errorType": "timeout", "error": "query timed out"})
    )
    done = mvctl(reg.root, "monitor", "fraud", "--metrics", str(saved))
    assert done.returncode == 3 and "query timed out" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_usage_errors(reg: Registry, tmp_path: Path) -> None:
    alone = mvctl(reg.root, "monitor", "fraud", "--query", "fpr=vector(1)")
    assert alone.returncode == 2 and "--query goes with --prometheus" in alone.stderr
    none = mvctl(reg.root, "monitor", "fraud", "--prometheus", "http://127.0.0.1:9")
    assert none.returncode == 2 and "at least one --query" in none.stderr
    bad = mvctl(reg.root, "monitor", "fraud", "--prometheus", "ftp://x", "--query", "a=b")
    assert bad.returncode == 2 and "not an http(s) URL" in bad.stderr
    secret = mvctl(reg.root, "monitor", "fraud", "--prometheus", "http://u:pw@h", "--query", "a=b")
    assert secret.returncode == 2 and "pw" not in secret.stderr


# --- a canned server: the token is sent, a redirect is not followed ------------------------


@pytest.fixture
def canned() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            if self.path.startswith("/moved"):
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.2:1/api/v1/query")
                self.end_headers()
                return
            body = json.dumps(vector(({}, "0.2"))).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_the_bearer_token_is_sent_and_a_redirect_refused(
    canned: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = canned
    source = PrometheusSource(url, (Query(FPR, "vector(0.2)"),), token="t" * 20, timeout=5)
    assert from_prometheus(source)[0] == {FPR: 0.2}
    assert seen[-1]["Authorization"] == "Bearer " + "t" * 20
    moved = PrometheusSource(f"{url}/moved", (Query(FPR, "x"),), token="t" * 20, timeout=5)
    with pytest.raises(MvctlError, match="HTTP 302"):
        from_prometheus(moved)
    assert len(seen) == 2  # nothing reached the redirect's target


def test_an_unreachable_prometheus_is_exit_3(reg: Registry) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    done = mvctl(
        reg.root, "monitor", "fraud", "--prometheus", f"http://127.0.0.1:{port}", "--query", "a=b"
    )
    assert done.returncode == 3 and "cannot query Prometheus" in done.stderr, done.stderr


# --- the real Prometheus -------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    where = tmp_path_factory.mktemp("prometheus")
    (where / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [
        binary,
        f"--config.file={where / 'prometheus.yml'}",
        f"--storage.tsdb.path={where / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with (where / "log").open("w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    try:
        assert httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, (
            where / "log"
        ).read_text()
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


@pytest.mark.slow
def test_the_real_prometheus_answers_a_breach(reg: Registry, prometheus: str) -> None:
    args = ("monitor", "fraud", "--prometheus", prometheus, "--json")
    breach = mvctl(reg.root, *args, "--query", f"{FPR}=vector(0.2)")
    assert breach.returncode == 1, breach.stderr
    assert json.loads(breach.stdout)["results"][-1]["level"] == "breach"
    fine = mvctl(reg.root, *args, "--query", f"{FPR}=scalar(vector(0.01))")
    assert fine.returncode == 0, fine.stderr
    empty = mvctl(reg.root, *args, "--query", f"{FPR}=no_such_metric_anywhere")
    report = json.loads(empty.stdout)
    assert empty.returncode == 0 and report["results"][-1]["level"] == "skipped"
    assert any("no series" in note for note in report["notes"])


@pytest.mark.slow
def test_the_real_prometheus_refusals_are_exit_3(reg: Registry, prometheus: str) -> None:
    args = ("monitor", "fraud", "--prometheus", prometheus)
    bad = mvctl(reg.root, *args, "--query", f"{FPR}=rate(")
    assert bad.returncode == 3 and "status" in bad.stderr and "error" in bad.stderr, bad.stderr
    nan = mvctl(reg.root, *args, "--query", f"{FPR}=vector(0) / 0")
    assert nan.returncode == 3 and "NaN" in nan.stderr, nan.stderr
