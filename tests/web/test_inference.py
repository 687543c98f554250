"""The model server's app and its tensors, in-process: a real Router over a real skops model,
queried through Starlette's test client (the end-to-end runs are in test_serve.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mvctl.errors import UsageError
from mvctl.serving import Loaded, Router, load_model
from mvctl.web import inference
from mvctl.web.tensors import BadTensor, output_tensor, parse_infer

TOKEN = "in-process-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pandas as pd
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    bunch = load_iris()
    model = LogisticRegression(max_iter=500).fit(
        pd.DataFrame(bunch.data, columns=list(FEATURES)), bunch.target
    )
    path = tmp_path_factory.mktemp("weights") / "iris.skops"
    skops.io.dump(model, path)
    return path


class NotANumber:
    """A model answering what JSON cannot carry."""

    def predict(self, inputs: Any) -> list[Any]:
        return [float("nan")] * len(inputs)


class Broken:
    """A model whose own code fails (what PredictError reports)."""

    def predict(self, inputs: Any) -> list[Any]:
        raise RuntimeError("the model's own bug")


@pytest.fixture
def router(weights: Path, tmp_path: Path) -> Iterator[Router]:
    router = Router("iris", decision_log=tmp_path / "decisions.jsonl")
    yield router
    router.close()


def serving(router: Router, weights: Path, version: str = "v1.0.0") -> None:
    model = load_model(weights)
    router.set_channels([Loaded("production", version, model, None, version)])


@pytest.fixture
def client(router: Router) -> Iterator[TestClient]:
    with TestClient(inference.create_app(router, model="iris", token=TOKEN)) as client:
        yield client


def infer_body(rows: list[list[float]] = ROWS) -> dict[str, Any]:
    data = [x for row in rows for x in row]
    return {"inputs": [{"name": "x", "shape": [len(rows), 4], "datatype": "FP64", "data": data}]}


def test_not_ready_until_a_model_is_loaded(
    client: TestClient, router: Router, weights: Path
) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/models/iris/ready", headers=AUTH).status_code == 503
    waiting = client.post("/v2/models/iris/infer", json=infer_body(), headers=AUTH)
    assert waiting.status_code == 503 and waiting.headers["retry-after"] == "1"
    serving(router, weights)
    assert client.get("/v2/health/ready").json() == {"ready": True}
    answer = client.post("/v2/models/iris/infer", json=infer_body(), headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"] == [
        {"name": "predict", "shape": [2], "datatype": "INT64", "data": [0, 2]}
    ]
    assert answer.json()["id"] == answer.headers["x-request-key"]


def test_answers_name_the_version_and_carry_the_key(
    client: TestClient, router: Router, weights: Path
) -> None:
    serving(router, weights, "v1.2.0")
    records = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    answer = client.post("/predict", json=records, headers={**AUTH, "X-Request-Key": "abc"})
    assert answer.json() == {
        "model": "iris",
        "model_version": "v1.2.0",
        "channel": "production",
        "key": "abc",
        "predictions": [0, 2],
    }
    assert answer.headers["x-model-version"] == "v1.2.0"
    same = client.post("/predict", json={"records": records}, headers=AUTH)
    again = client.post("/predict", json={"records": records}, headers=AUTH)
    assert same.headers["x-request-key"] == again.headers["x-request-key"]  # the body's hash
    missing = client.post("/predict", json=[{"sepal_length": 1.0}], headers=AUTH)
    assert missing.status_code == 400 and "features" in missing.json()["error"]
    narrow = client.post("/v2/models/iris/infer", json=infer_body([[1.0, 2.0]]), headers=AUTH)
    assert narrow.status_code == 400, narrow.text  # the model's own complaint, as MLServer
    assert client.get("/v2", headers=AUTH).json()["extensions"] == []
    meta = client.get("/v2/models/iris/versions/v1.2.0", headers=AUTH).json()
    assert meta["versions"] == ["v1.2.0"] and meta["parameters"]["channels"] == {
        "production": "v1.2.0"
    }
    assert (
        client.post("/outcomes", json={"key": "abc", "outcome": 0}, headers=AUTH).status_code == 204
    )
    text = client.get("/metrics", headers=AUTH).text
    assert 'mvctl_requests_total{channel="production",version="v1.2.0"} 4.0' in text


def test_a_failing_model_is_a_400_with_the_cause_and_is_counted(
    client: TestClient, router: Router
) -> None:
    router.set_channels([Loaded("production", "v0.9.0", Broken(), None, "v0.9.0")])
    answer = client.post("/v2/models/iris/infer", json=infer_body(), headers=AUTH)
    assert answer.status_code == 400
    assert "the model's own bug" in answer.json()["error"]
    text = client.get("/metrics", headers=AUTH).text
    assert 'mvctl_request_errors_total{channel="production",version="v0.9.0"} 1.0' in text


def test_an_answer_json_cannot_carry_is_a_500_that_says_so(
    client: TestClient, router: Router
) -> None:
    router.set_channels([Loaded("production", "v0.9.0", NotANumber(), None, "v0.9.0")])
    answer = client.post("/v2/models/iris/infer", json=infer_body(), headers=AUTH)
    assert answer.status_code == 500 and "NaN" in answer.json()["error"]
    assert answer.headers["x-model-version"] == "v0.9.0"


def test_refusals(client: TestClient, router: Router, weights: Path) -> None:
    serving(router, weights)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401
    assert client.get("/v2/models/other", headers=AUTH).status_code == 404
    assert client.get("/v2/models/iris/versions/v9.0.0/ready", headers=AUTH).status_code == 404
    declared = client.post(
        "/predict", content=b"[]", headers={**AUTH, "Content-Length": str(9 << 20)}
    )
    assert declared.status_code == 413
    assert client.post("/predict", content=b"[1,", headers=AUTH).status_code == 400
    assert client.post("/predict", content=b"Infinity", headers=AUTH).status_code == 400
    assert client.get("/v3", headers=AUTH).json() == {"error": "not found"}
    wrong_method = client.get("/v2/models/iris/infer", headers=AUTH)
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["allow"]
    key = client.post(
        "/predict", json=[{"a": 1}], headers={**AUTH, "X-Request-Key": "é".encode("latin-1")}
    )
    assert key.status_code == 400


def test_without_a_token_only_on_loopback(router: Router, weights: Path) -> None:
    serving(router, weights)
    with TestClient(inference.create_app(router, model="iris", token=None)) as client:
        assert client.post("/v2/models/iris/infer", json=infer_body()).status_code == 200
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert inference.check_no_auth(host) == host
    for host in ("0.0.0.0", "::", "192.168.1.4", "example.com"):  # noqa: S104
        with pytest.raises(UsageError, match="loopback"):
            inference.check_no_auth(host)


def test_the_token_comes_from_mvctl_serve_token(tmp_path: Path) -> None:
    assert inference.load_token(None, {"MVCTL_SERVE_TOKEN": TOKEN}) == TOKEN
    with pytest.raises(UsageError, match="mvctl serve needs") as short:
        inference.load_token(None, {"MVCTL_SERVE_TOKEN": "short", "MVCTL_WEBHOOK_TOKEN": TOKEN})
    assert short.value.hint is not None and "MVCTL_SERVE_TOKEN" in short.value.hint
    file = tmp_path / "token"
    file.write_text(TOKEN + "\n")
    assert inference.load_token(file, {}) == TOKEN


# --- tensors --------------------------------------------------------------------------------


def test_rows_columns_and_nested_data() -> None:
    rows = parse_infer(
        {
            "id": "r",
            "inputs": [
                {"name": "x", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2], [3, 4]]}
            ],
        }
    )
    assert rows.id == "r" and rows.inputs == [[1, 2], [3, 4]]
    columns = parse_infer(
        {
            "inputs": [
                {"name": "a", "shape": [2], "datatype": "FP32", "data": [1.5, 2]},
                {"name": "b", "shape": [2, 1], "datatype": "BYTES", "data": [["x"], ["y"]]},
                {"name": "c", "shape": [2], "datatype": "BOOL", "data": [True, False]},
            ]
        }
    )
    assert columns.inputs == [{"a": 1.5, "b": "x", "c": True}, {"a": 2, "b": "y", "c": False}]
    single = parse_infer(
        {"inputs": [{"name": "a", "shape": [1, 1], "datatype": "UINT8", "data": 7}]}
    )
    assert single.inputs == [{"a": 7}]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"id": 5, "inputs": []},
        {"inputs": [1]},
        {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "UINT8", "data": [1, 2, 3, -4]}]},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [1]}]},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [True]}]},
        {"inputs": [{"name": "x", "shape": [True], "datatype": "FP64", "data": [1.0]}]},
        {"inputs": [{"name": "x\n", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
        {
            "inputs": [
                {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
                {"name": "b", "shape": [1], "datatype": "FP64", "data": [1.0]},
            ]
        },
        {
            "inputs": [
                {"name": "a", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]},
                {"name": "b", "shape": [1], "datatype": "FP64", "data": [1.0]},
            ]
        },
    ],
)
def test_malformed_tensors_are_refused(body: object) -> None:
    with pytest.raises(BadTensor):
        parse_infer(body)


def test_output_tensors() -> None:
    assert output_tensor([1, 0]) == {
        "name": "predict",
        "shape": [2],
        "datatype": "INT64",
        "data": [1, 0],
    }
    assert output_tensor([[0.1, 0.9], [0.8, 0.2]])["shape"] == [2, 2]
    assert output_tensor([[0.1, 0.9], [0.8, 0.2]])["datatype"] == "FP64"
    assert output_tensor([True])["datatype"] == "BOOL"
    assert output_tensor(["cat", "dog"])["datatype"] == "BYTES"
    mixed = output_tensor([1, "a", None])
    assert mixed == {
        "name": "predict",
        "shape": [3],
        "datatype": "BYTES",
        "data": ["1", "a", "null"],
    }


# --- the command's refusals before it loads or listens ----------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "code", "words"),
    [
        ([], {}, 2, "MVCTL_SERVE_TOKEN"),
        (["--no-auth", "--host", "0.0.0.0"], {}, 2, "loopback"),  # noqa: S104
        (["--no-auth", "--token-file", "t"], {}, 2, "contradict"),
        (["--model", "iris"], {"MVCTL_SERVE_TOKEN": TOKEN}, 2, "--follow"),
        (["--follow", "file:///nowhere"], {"MVCTL_SERVE_TOKEN": TOKEN}, 2, "--model"),
        (["--port", "0"], {"MVCTL_SERVE_TOKEN": TOKEN}, 2, "--port"),
        (["--shadow-queue", "0"], {"MVCTL_SERVE_TOKEN": TOKEN}, 2, "--shadow-queue"),
        (["--interval", "nan"], {"MVCTL_SERVE_TOKEN": TOKEN}, 2, "interval"),
        ([], {"MVCTL_SERVE_TOKEN": TOKEN}, 3, "serves nothing yet"),
    ],
)
def test_serve_refuses_before_listening(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    code: int,
    words: str,
) -> None:
    from typer.testing import CliRunner

    from mvctl.cli.app import app

    monkeypatch.delenv("MVCTL_SERVE_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "host"), *args], env=env)
    assert result.exit_code == code, result.output
    assert words in result.output
    assert "Traceback" not in result.output
