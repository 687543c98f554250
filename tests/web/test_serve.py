"""`mvctl serve` end to end: a registry of scikit-learn models saved as .skops, promoted and
published, pulled by the real `mvctl pull` into a host directory, served by a real
`mvctl serve` subprocess on a loopback port, and queried over real sockets (OIP v2 and
/predict). A rollback swaps the model under a stream of requests without failing one."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import Registry, copy_registry, isolate, make_registry, mvctl

pytestmark = pytest.mark.slow

TOKEN = "serve-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL = "iris"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  iris:
    weights: models/iris.skops
  pickled:
    weights: models/pickled.pkl
"""


def _fit(c: float) -> object:
    """A classifier of iris (sklearn's bundled data) fitted on named columns."""
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    bunch = load_iris()
    frame = pd.DataFrame(bunch.data, columns=list(FEATURES))
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(
        frame, bunch.target
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris v0.1.0 then v0.2.0 in production (.skops), v0.1.0 in shadow, and pickled
    v0.1.0 in production (a .pkl), all published to the bare remote and the DVC store."""
    import skops.io

    from mvctl.channels.promotion import promote
    from mvctl.registry.register import RegisterRequest, register

    base = tmp_path_factory.mktemp("serve-template")
    (base / "home").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        reg = make_registry(base)
        reg.write("mvctl.yaml", CONFIG)
        reg.write("data/iris.csv", ",".join(FEATURES) + "\n" + "5.1,3.5,1.4,0.2\n")
        reg.git("add", "mvctl.yaml")
        reg.git("commit", "-q", "-m", "Serve iris")
        for c in (0.01, 10.0):
            (reg.root / "models").mkdir(exist_ok=True)
            skops.io.dump(_fit(c), reg.root / "models" / "iris.skops")
            reg.write("metrics.json", json.dumps({"auc": 0.9 + c / 1000}))
            version = register(
                RegisterRequest(
                    model=MODEL,
                    cwd=reg.root,
                    data=("data/iris.csv",),
                    metrics_file="metrics.json",
                    push=True,
                )
            ).manifest.version
            promote(reg.root, MODEL, version, "production", push=True)
            if c < 1:
                promote(reg.root, MODEL, version, "shadow", push=True)
        reg.write("models/pickled.pkl", pickle.dumps(_fit(1.0)))
        pickled = register(RegisterRequest(model="pickled", cwd=reg.root, push=True))
        promote(reg.root, "pickled", pickled.manifest.version, "production", push=True)
    return base


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Registry:
    return copy_registry(template, tmp_path, storage=False)


def pull(reg: Registry, host: Path, model: str = MODEL, *channels: str) -> None:
    """`mvctl pull` as a host runs it, against this copy's remotes."""
    done = mvctl(
        reg.root.parent,
        "pull",
        str(reg.origin),
        model,
        "--dest",
        str(host),
        "--dvc-remote",
        str(reg.storage),
        *(arg for channel in channels for arg in ("--channel", channel)),
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def host(reg: Registry, tmp_path: Path) -> Path:
    host = tmp_path / "host"
    pull(reg, host)
    return host


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(check: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)  # stderr, as it comes

    def log(self) -> str:
        return "\n".join(self.lines)


def _argv(host: Path, port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "mvctl", "serve", str(host), "--port", str(port), *args]


@contextmanager
def served(host: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A real `mvctl serve` on a free loopback port, up and ready."""
    port = _free_port()
    proc = subprocess.Popen(
        _argv(host, port, *args),
        env={**os.environ, "MVCTL_SERVE_TOKEN": TOKEN, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(f"http://127.0.0.1:{port}", proc)
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: server.lines.extend(proc.stderr or ()), daemon=True)
    reader.start()

    def ready() -> bool:
        if proc.poll() is not None:
            return True
        try:
            return httpx.get(f"{server.url}/v2/health/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert _until(ready), server.log()
        assert proc.poll() is None, server.log()
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)


def infer_body(rows: list[list[float]] = ROWS, **extra: object) -> dict[str, object]:
    data = [x for row in rows for x in row]
    tensor = {"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": data}
    return {"inputs": [tensor], **extra}


def records(rows: list[list[float]] = ROWS) -> list[dict[str, float]]:
    return [dict(zip(FEATURES, row, strict=True)) for row in rows]


def rollback(reg: Registry) -> None:
    done = mvctl(reg.root, "rollback", MODEL, "--reason", "test: swap under load")
    assert done.returncode == 0, done.stderr


# --- answers ------------------------------------------------------------------------------


def test_infer_and_predict_answer_with_the_version_that_served(host: Path) -> None:
    with served(host) as server, httpx.Client(base_url=server.url, headers=AUTH) as client:
        answer = client.post(f"/v2/models/{MODEL}/infer", json=infer_body(id="req-1"))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_name"] == MODEL and body["model_version"] == "v0.2.0"
        assert body["id"] == "req-1"
        [output] = body["outputs"]
        assert output["shape"] == [3] and output["datatype"] == "INT64"
        assert output["data"] == [0, 2, 1]  # setosa, virginica, versicolor
        assert answer.headers["x-model-version"] == "v0.2.0"
        assert re.fullmatch(r"[0-9a-f]{64}", answer.headers["x-request-key"])

        # One input per feature (MLServer's columns) names the features: the same answers.
        columns = [
            {"name": name, "shape": [3], "datatype": "FP64", "data": [r[i] for r in ROWS]}
            for i, name in enumerate(FEATURES)
        ]
        by_column = client.post(
            f"/v2/models/{MODEL}/versions/v0.2.0/infer", json={"inputs": columns}
        )
        assert by_column.status_code == 200, by_column.text
        assert by_column.json()["outputs"][0]["data"] == [0, 2, 1]

        keyed = client.post(
            "/predict", json={"records": records()}, headers={"X-Request-Key": "customer-42"}
        )
        assert keyed.status_code == 200, keyed.text
        assert keyed.json() == {
            "model": MODEL,
            "model_version": "v0.2.0",
            "channel": "production",
            "key": "customer-42",
            "predictions": [0, 2, 1],
        }
        assert keyed.headers["x-request-key"] == "customer-42"
        assert client.post("/predict", json=records()[:1]).json()["predictions"] == [0]

        meta = client.get(f"/v2/models/{MODEL}").json()
        assert meta["name"] == MODEL and meta["versions"] == ["v0.2.0"]
        assert client.get("/v2").json()["name"] == "mvctl"
        assert client.get(f"/v2/models/{MODEL}/ready").status_code == 200
        assert client.get(f"/v2/models/{MODEL}/versions/v0.2.0/ready").status_code == 200


def test_metrics_outcomes_and_the_decision_log(host: Path, tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    with (
        served(host, "--decision-log", str(log)) as server,
        httpx.Client(base_url=server.url, headers=AUTH) as client,
    ):
        keys = [f"k{i}" for i in range(3)]
        for key in keys:
            answer = client.post("/predict", json=records(), headers={"X-Request-Key": key})
            assert answer.status_code == 200, answer.text
        done = client.post("/outcomes", json=[{"key": "k1", "outcome": 1}])
        assert done.status_code == 204, done.text
        single = client.post("/outcomes", json={"key": "k2", "outcome": "fraud"})
        assert single.status_code == 204
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        text = metrics.text
        assert re.search(
            r'mvctl_requests_total\{channel="production",version="v0.2.0"\} 3(\.0)?\n', text
        ), text
        assert 'mvctl_served_info{channel="production",version="v0.2.0"} 1.0' in text
        assert "mvctl_request_latency_seconds_bucket" in text
    assert server.proc.returncode == 0, server.log()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    decisions = [d for d in lines if d.get("kind") != "outcome"]
    assert [d["key"] for d in decisions] == keys
    assert {(d["channel"], d["version"], d["role"]) for d in decisions} == {
        ("production", "v0.2.0", "primary")
    }
    assert decisions[0]["output"] == [0, 2, 1]
    outcomes = [(d["key"], d["outcome"]) for d in lines if d.get("kind") == "outcome"]
    assert outcomes == [("k1", 1), ("k2", "fraud")]


def test_the_default_decision_log_is_in_dir_and_sigterm_stops_cleanly(host: Path) -> None:
    with served(host) as server:
        answer = httpx.post(f"{server.url}/predict", json=records(), headers=AUTH)
        assert answer.status_code == 200
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
    assert "stopped" in server.log()
    [line] = (host / "decisions.jsonl").read_text().splitlines()
    assert json.loads(line)["version"] == "v0.2.0"


def test_a_shadow_channel_answers_every_request_off_the_callers_path(
    reg: Registry, tmp_path: Path
) -> None:
    host = tmp_path / "two-channels"
    pull(reg, host, MODEL, "production", "shadow")
    log = tmp_path / "decisions.jsonl"
    keys = [f"customer-{i}" for i in range(5)]
    with (
        served(host, "--decision-log", str(log)) as server,
        httpx.Client(base_url=server.url, headers=AUTH) as client,
    ):
        for key in keys:
            answer = client.post("/predict", json=records(), headers={"X-Request-Key": key})
            assert answer.status_code == 200, answer.text
            assert (answer.json()["channel"], answer.json()["model_version"]) == (
                "production",
                "v0.2.0",
            )
        meta = client.get(f"/v2/models/{MODEL}").json()
        assert meta["parameters"]["channels"] == {"production": "v0.2.0", "shadow": "v0.1.0"}
        assert sorted(meta["versions"]) == ["v0.1.0", "v0.2.0"]

        def shadowed() -> list[dict[str, object]]:
            lines = [json.loads(line) for line in log.read_text().splitlines()]
            return [d for d in lines if d["role"] == "shadow"]

        assert _until(lambda: len(shadowed()) == len(keys))
        text = client.get("/metrics").text
        for channel, version in (("production", "v0.2.0"), ("shadow", "v0.1.0")):
            assert f'mvctl_served_info{{channel="{channel}",version="{version}"}} 1.0' in text
        assert re.search(r'mvctl_requests_total\{channel="shadow",version="v0.1.0"\} 5', text)
    assert {d["key"] for d in shadowed()} == set(keys)
    assert {(d["channel"], d["version"]) for d in shadowed()} == {("shadow", "v0.1.0")}


def _bucket(key: str) -> float:
    """The canary rule of issue 12, computed here independently of the router."""
    digest = hashlib.sha256(f"{MODEL}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


def test_a_weighted_canary_gets_the_keys_below_its_weight_and_keeps_them(
    reg: Registry, tmp_path: Path
) -> None:
    from mvctl.channels.promotion import promote
    from mvctl.channels.weights import set_weight

    promote(reg.root, MODEL, "v0.1.0", "canary", push=True, weight=30)
    host = tmp_path / "canaried"
    pull(reg, host, MODEL, "production", "canary")
    keys = [f"user-{i}" for i in range(60)]
    versions = {"production": "v0.2.0", "canary": "v0.1.0"}
    with served(host) as server, httpx.Client(base_url=server.url, headers=AUTH) as client:

        def route(key: str) -> str:
            answer = client.post("/predict", json=records(), headers={"X-Request-Key": key})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["model_version"] == versions[body["channel"]]
            return str(body["channel"])

        first = {key: route(key) for key in keys}
        assert first == {k: "canary" if _bucket(k) < 30 else "production" for k in keys}
        assert set(first.values()) == {"canary", "production"}
        assert {key: route(key) for key in keys} == first  # sticky, request after request
        text = client.get("/metrics").text
        assert 'mvctl_served_info{channel="canary",version="v0.1.0"} 1.0' in text

        set_weight(reg.root, MODEL, 70, push=True)
        pull(reg, host, MODEL, "production", "canary")
        probe = next(k for k in keys if 30 <= _bucket(k) < 70)
        assert _until(lambda: route(probe) == "canary"), server.log()
        raised = {key: route(key) for key in keys}
    assert raised == {k: "canary" if _bucket(k) < 70 else "production" for k in keys}
    assert all(raised[k] == "canary" for k in keys if first[k] == "canary")


# --- a swap under load --------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    started: float
    ended: float
    status: int
    version: str | None


def _client_loop(url: str, stop: threading.Event, out: list[Sent], n: int) -> None:
    body = infer_body()
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        i = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                if i % 2:
                    r = client.post(f"/v2/models/{MODEL}/infer", json=body)
                    version = r.json().get("model_version") if r.status_code == 200 else None
                else:
                    headers = {"X-Request-Key": f"client{n}-{i}"}
                    r = client.post("/predict", json=records(), headers=headers)
                    version = r.json().get("model_version") if r.status_code == 200 else None
                out.append(Sent(started, time.monotonic(), r.status_code, version))
            except httpx.HTTPError:
                out.append(Sent(started, time.monotonic(), 0, None))
            i += 1


def test_a_rollback_and_pull_swap_the_model_without_failing_a_request(
    reg: Registry, host: Path
) -> None:
    with served(host) as server:
        stop = threading.Event()
        sent: list[list[Sent]] = [[] for _ in range(4)]
        clients = [
            threading.Thread(target=_client_loop, args=(server.url, stop, sent[n], n))
            for n in range(4)
        ]
        for thread in clients:
            thread.start()
        try:
            assert _until(lambda: all(len(s) >= 5 for s in sent))
            rollback(reg)
            pull(reg, host)
            assert _until(lambda: any(x.version == "v0.1.0" for s in sent for x in s))
            count = sum(map(len, sent))
            assert _until(lambda: sum(map(len, sent)) >= count + 40)
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=60)
    answers = [x for s in sent for x in s]
    assert [x for x in answers if not 200 <= x.status < 300] == []
    assert {x.version for x in answers} == {"v0.1.0", "v0.2.0"}
    first_new = min(x.ended for x in answers if x.version == "v0.1.0")
    after = [x.version for x in answers if x.started > first_new]
    assert len(after) >= 40 and set(after) == {"v0.1.0"}
    assert re.search(r"swapped: now serving production v0\.1\.0", server.log()), server.log()


def test_with_follow_the_server_pulls_and_swaps_by_itself(reg: Registry, tmp_path: Path) -> None:
    host = tmp_path / "followed"  # empty: the server's first pull fills it
    follow = ("--follow", str(reg.origin), "--model", MODEL, "--dvc-remote", str(reg.storage))
    with served(host, *follow, "--interval", "0.2") as server:
        url = f"{server.url}/v2/models/{MODEL}/infer"
        assert httpx.post(url, json=infer_body(), headers=AUTH).json()["model_version"] == "v0.2.0"
        rollback(reg)

        def swapped() -> bool:
            answer = httpx.post(url, json=infer_body(), headers=AUTH)
            assert answer.status_code == 200, answer.text
            return bool(answer.json()["model_version"] == "v0.1.0")

        assert _until(swapped), server.log()
        commit = reg.git("rev-parse", f"{MODEL}@production^{{commit}}").strip()
        alias = f'mvctl_alias_info{{channel="production",commit="{commit}",version="v0.1.0"}} 1.0'

        def poller_metrics() -> bool:
            text = httpx.get(f"{server.url}/metrics", headers=AUTH).text
            return alias in text and 'mvctl_swaps_total{channel="production"} 1.0' in text

        assert _until(poller_metrics), httpx.get(f"{server.url}/metrics", headers=AUTH).text
        text = httpx.get(f"{server.url}/metrics", headers=AUTH).text
        assert re.search(r"^mvctl_last_sync_timestamp_seconds 1\.\d+e\+09$", text, re.M), text
        assert re.search(r"^mvctl_reloads_total [1-9]", text, re.M), text
    assert "pulled iris@production: v0.2.0 -> v0.1.0" in server.log()


@pytest.mark.skipif(shutil.which("hey") is None, reason="hey is not on PATH")
def test_hey_sees_no_failed_request_across_a_rollback(reg: Registry, host: Path) -> None:
    with served(host) as server:
        load = subprocess.Popen(
            [
                "hey", "-z", "10s", "-q", "50", "-c", "4", "-m", "POST",
                "-H", f"Authorization: Bearer {TOKEN}", "-T", "application/json",
                "-d", json.dumps(infer_body()), f"{server.url}/v2/models/{MODEL}/infer",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        rollback(reg)
        pull(reg, host)
        out, _ = load.communicate(timeout=60)
    assert load.returncode == 0, out
    statuses = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    assert statuses and set(statuses) == {"200"}, out
    assert int(statuses["200"]) > 1000, out  # at least 100 requests/s held, of 200 asked
    assert "Error distribution" not in out, out
    assert "swapped: now serving production v0.1.0" in server.log()


# --- what a peer may not do ---------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/v2"),
    ("GET", f"/v2/models/{MODEL}"),
    ("GET", f"/v2/models/{MODEL}/ready"),
    ("POST", f"/v2/models/{MODEL}/infer"),
    ("POST", "/predict"),
    ("POST", "/outcomes"),
    ("GET", "/metrics"),
]


def test_every_endpoint_but_health_needs_the_token(host: Path) -> None:
    forged = [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}]
    with served(host) as server, httpx.Client(base_url=server.url) as client:
        for method, path in ENDPOINTS:
            for headers in forged:
                answer = client.request(method, path, headers=headers, json=infer_body())
                assert answer.status_code == 401, (method, path, headers)
                assert answer.json() == {"error": "unauthorized"}
            assert client.request(method, path, headers=AUTH, json=infer_body()).status_code != 401
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").json() == {"ready": True}
    assert "bad or no token" in server.log()


MALFORMED: list[object] = [
    {},
    {"inputs": []},
    {"inputs": "rows"},
    {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": [1.0] * 11}]},
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP99", "data": [1.0] * 4}]},
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ["a"] * 4}]},
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT64", "data": [1.5] * 4}]},
    {"inputs": [{"name": "x", "shape": [1, 2, 2], "datatype": "FP64", "data": [1.0] * 4}]},
    {"inputs": [{"name": "x", "shape": [-1, 4], "datatype": "FP64", "data": [1.0] * 4}]},
    {"inputs": [{"shape": [1, 4], "datatype": "FP64", "data": [1.0] * 4}]},
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64"}]},
    {"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]}] * 2},
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [[[[[[[[[[1]]]]]]]]]]}]},
]


def test_malformed_requests_are_400_and_never_reach_the_model(host: Path, tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    with (
        served(host, "--decision-log", str(log)) as server,
        httpx.Client(base_url=server.url, headers=AUTH) as client,
    ):
        infer = f"/v2/models/{MODEL}/infer"
        for body in MALFORMED:
            answer = client.post(infer, json=body)
            assert answer.status_code == 400, (body, answer.text)
            assert answer.json()["error"], body
        for raw in (b"{not json", b'{"inputs": NaN}', b"[" * 100_000):
            answer = client.post(infer, content=raw)
            assert answer.status_code == 400, raw[:20]
        for body in ([], {"records": []}, [[1, 2, 3, 4]], {"rows": records()}, "x"):
            answer = client.post("/predict", json=body)
            assert answer.status_code == 400, body
        for body in ({"key": "k"}, [], {"key": "", "outcome": 1}, {"key": "k\n", "outcome": 1}):
            assert client.post("/outcomes", json=body).status_code == 400, body
        huge = {"key": "k", "outcome": "x" * 5000}  # over the decision log's 4 KiB cap
        assert client.post("/outcomes", json=huge).status_code == 400
        bad_key = client.post("/predict", json=records(), headers={"X-Request-Key": "x" * 300})
        assert bad_key.status_code == 400
        counted = re.findall(
            r"^mvctl_requests_total\{.*\} (\S+)$", client.get("/metrics").text, re.M
        )
        assert counted == ["0.0"]
    assert not log.exists() or log.read_text() == ""


def test_limits_wrong_models_and_versions(host: Path) -> None:
    with served(host) as server, httpx.Client(base_url=server.url, headers=AUTH) as client:
        big = b'{"inputs": [' + b" " * (9 << 20) + b"]}"
        answer = client.post(f"/v2/models/{MODEL}/infer", content=big)
        assert answer.status_code == 413
        chunked = client.post("/predict", content=iter([b"[" + b" " * (1 << 20)] * 9))
        assert chunked.status_code == 413
        for path in (
            "/v2/models/fraud",
            "/v2/models/fraud/ready",
            "/v2/models/iris/versions/v9.9.9",
        ):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert "error" in answer.json()
        assert client.post("/v2/models/fraud/infer", json=infer_body()).status_code == 404
        wrong_version = client.post(f"/v2/models/{MODEL}/versions/v0.1.0/infer", json=infer_body())
        assert wrong_version.status_code == 404


# --- what the server refuses to start with ------------------------------------------------


def test_a_pickle_is_refused_without_trust_pickle(reg: Registry, tmp_path: Path) -> None:
    host = tmp_path / "pickled"
    pull(reg, host, "pickled")
    refused = subprocess.run(
        _argv(host, _free_port()),
        env={**os.environ, "MVCTL_SERVE_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 1, refused.stderr
    first, *rest = refused.stderr.splitlines()
    assert first.startswith("error: refusing to unpickle "), refused.stderr
    assert "--trust-pickle" in first and "Traceback" not in refused.stderr
    assert all(line.startswith("hint:") for line in rest), refused.stderr
    with served(host, "--trust-pickle") as server:
        answer = httpx.post(f"{server.url}/predict", json=records(), headers=AUTH)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "pickled" and answer.json()["predictions"] == [0, 2, 1]


def test_usage_errors_stop_it_before_it_listens(host: Path, tmp_path: Path) -> None:
    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _argv(host, _free_port(), *args),
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    no_token = start(env={"MVCTL_SERVE_TOKEN": ""})
    assert no_token.returncode == 2 and "MVCTL_SERVE_TOKEN" in no_token.stderr
    open_to_all = start("--no-auth", "--host", "0.0.0.0")  # noqa: S104 - what is refused
    assert open_to_all.returncode == 2 and "loopback" in open_to_all.stderr
    nothing = subprocess.run(
        _argv(tmp_path / "empty", _free_port()),
        env={**os.environ, "MVCTL_SERVE_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert nothing.returncode == 3 and "serves nothing yet" in nothing.stderr
    (tmp_path / "a-file").write_text("")
    unwritable = start(
        "--decision-log", str(tmp_path / "a-file" / "log"), env={"MVCTL_SERVE_TOKEN": TOKEN}
    )
    assert unwritable.returncode == 3 and "--decision-log" in unwritable.stderr


def test_no_auth_on_loopback_serves_without_a_token(host: Path) -> None:
    with served(host, "--no-auth", env={"MVCTL_SERVE_TOKEN": ""}) as server:
        answer = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", json=infer_body())
        assert answer.status_code == 200, answer.text
