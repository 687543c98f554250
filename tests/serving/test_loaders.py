"""Model loaders: real scikit-learn models (trained on bundled data) saved as skops, ONNX,
pickle and joblib, loaded back and answering records and rows; refusals of pickles and of
skops files naming untrusted types."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mvctl.errors import UsageError
from mvctl.serving import load_model
from mvctl.serving.errors import InvalidRequest, ModelLoadError, ModelRefused


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    bunch = load_iris(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    return frame


@pytest.fixture(scope="module")
def named_model(iris: pd.DataFrame) -> Any:
    """Fitted on named columns: it has feature_names_in_."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(iris.drop(columns="target"), iris["target"])
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, named_model: Any) -> Path:
    root = tmp_path_factory.mktemp("models")
    skops.io.dump(named_model, root / "model.skops")
    return root


def features(iris: pd.DataFrame) -> pd.DataFrame:
    return iris.drop(columns="target")


# Rows are a numpy array, as documented; scikit-learn notes that they carry no names.
ROWS_OF_A_NAMED_MODEL = "ignore:X does not have valid feature names:UserWarning"


@pytest.mark.filterwarnings(ROWS_OF_A_NAMED_MODEL)
def test_skops_round_trip_answers_records_and_rows(
    models: Path, named_model: Any, iris: pd.DataFrame
) -> None:
    model = load_model(models / "model.skops")
    x = features(iris)
    expected = named_model.predict(x).tolist()
    # Records in any key order: the model's own feature order is used.
    records = []
    for row in x.to_dict("records"):
        keys = list(row)
        random.Random(len(records)).shuffle(keys)
        records.append({k: row[k] for k in keys})
    by_records = model.predict(records)
    assert by_records == expected
    assert all(type(v) is int for v in by_records)  # plain Python, not numpy scalars
    json.dumps(by_records)
    assert model.predict(x.to_numpy().tolist()) == expected
    assert model.predict([]) == []
    assert set(expected) == {0, 1, 2}  # the check above would catch a constant answer


def test_records_that_do_not_match_the_features_are_refused(
    models: Path, iris: pd.DataFrame
) -> None:
    model = load_model(models / "model.skops")
    record = features(iris).iloc[0].to_dict()
    del record["petal_width"]
    with pytest.raises(InvalidRequest, match="missing: petal_width"):
        model.predict([record])
    with pytest.raises(InvalidRequest, match="unknown: colour"):
        model.predict([{**features(iris).iloc[0].to_dict(), "colour": 1}])
    with pytest.raises(InvalidRequest, match="mix records and rows"):
        model.predict([features(iris).iloc[0].to_dict(), [1, 2, 3, 4]])
    with pytest.raises(InvalidRequest, match="same length"):
        model.predict([[1, 2, 3, 4], [1, 2]])
    with pytest.raises(InvalidRequest):
        model.predict("1,2,3,4")  # type: ignore[arg-type]


def test_onnx_made_with_skl2onnx(tmp_path: Path, iris: pd.DataFrame) -> None:
    from skl2onnx import to_onnx

    x = features(iris).to_numpy(dtype=np.float32)
    sk = LogisticRegression(max_iter=500).fit(x, iris["target"])
    (tmp_path / "model.onnx").write_bytes(to_onnx(sk, x[:1]).SerializeToString())
    model = load_model(tmp_path / "model.onnx")
    expected = sk.predict(x).tolist()
    assert model.predict(x.tolist()) == expected
    assert all(type(v) is int for v in model.predict(x[:3].tolist()))
    # Records: values in the records' own key order.
    records = [dict(zip(features(iris).columns, row, strict=True)) for row in x.tolist()]
    assert model.predict(records) == expected
    with pytest.raises(InvalidRequest, match="not numbers"):
        model.predict([["a", "b", "c", "d"]])


class _Marker:
    """Unpickling this writes a file: proof of code run by a load."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path(self.path).write_text, ("unpickled",))


@pytest.mark.filterwarnings(ROWS_OF_A_NAMED_MODEL)
def test_pickle_is_refused_without_trust_and_loaded_with_it(
    tmp_path: Path, named_model: Any, iris: pd.DataFrame
) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Marker(str(marker))))
    for suffix in (".pkl", ".pickle", ".joblib"):
        path = evil.with_suffix(suffix)
        path.write_bytes(evil.read_bytes())
        with pytest.raises(ModelRefused) as refused:
            load_model(path)
        message = refused.value.message
        assert refused.value.exit_code == 1
        assert "\n" not in message
        assert message == (
            f"refusing to unpickle {path}: a pickle runs code; register a .skops file,"
            " or pass --trust-pickle if you trust everyone who can push to the registry"
        )
    assert not marker.exists()

    good = tmp_path / "model.pkl"
    good.write_bytes(pickle.dumps(named_model))
    model = load_model(good, trust_pickle=True)
    assert (
        model.predict(features(iris).to_numpy()[:5].tolist())
        == named_model.predict(features(iris)[:5]).tolist()
    )

    import joblib

    joblib.dump(named_model, tmp_path / "model.joblib", compress=3)
    loaded = load_model(tmp_path / "model.joblib", trust_pickle=True)
    assert loaded.predict(features(iris).iloc[:5].to_dict("records")) == [0] * 5
    with pytest.raises(ModelLoadError, match="which has no predict"):
        evil_trusted = tmp_path / "model.pkl"
        evil_trusted.write_bytes(pickle.dumps(_Marker(str(marker))))
        load_model(evil_trusted, trust_pickle=True)
    assert marker.exists()  # trusted means it really was unpickled


class Doubler:
    """A model class of the user's own: skops does not trust it by default."""

    def __init__(self) -> None:
        self.factor = 2

    def predict(self, x: Any) -> Any:
        return np.asarray(x)[:, 0] * self.factor


def test_skops_with_an_untrusted_type_is_refused_naming_it(tmp_path: Path) -> None:
    skops.io.dump(Doubler(), tmp_path / "doubler.skops")
    with pytest.raises(ModelRefused) as refused:
        load_model(tmp_path / "doubler.skops")
    assert refused.value.exit_code == 1
    assert "tests.serving.test_loaders.Doubler" in refused.value.message
    assert "\n" not in refused.value.message


def custom_loader(path: Path) -> Doubler:
    """``--loader tests.serving.test_loaders:custom_loader``: reads a factor from the file."""
    model = Doubler()
    model.factor = int(path.read_text())
    return model


def not_a_model(path: Path) -> object:
    return object()


def failing_loader(path: Path) -> object:
    raise RuntimeError("the weights are\nsomewhere else")


def test_loader_module_function(tmp_path: Path) -> None:
    weights = tmp_path / "factor.txt"
    weights.write_text("3")
    model = load_model(weights, loader="tests.serving.test_loaders:custom_loader")
    assert model.predict([[1, 0], [5, 0]]) == [3, 15]

    with pytest.raises(ModelLoadError, match="has no predict"):
        load_model(weights, loader="tests.serving.test_loaders:not_a_model")
    with pytest.raises(ModelLoadError) as failed:
        load_model(weights, loader="tests.serving.test_loaders:failing_loader")
    assert failed.value.message.endswith("RuntimeError: the weights are somewhere else")
    with pytest.raises(ModelLoadError, match="has no function nothing_here"):
        load_model(weights, loader="tests.serving.test_loaders:nothing_here")
    with pytest.raises(ModelLoadError, match="cannot import loader"):
        load_model(weights, loader="tests.serving.no_such_module:f")
    for bad in ("os.system", "os:system; rm -rf /", "-m:f", "a..b:f", "a:b:c", " a:b"):
        with pytest.raises(UsageError, match="invalid loader"):
            load_model(weights, loader=bad)


def test_weights_directory_with_one_known_file(
    tmp_path: Path, models: Path, iris: pd.DataFrame
) -> None:
    (tmp_path / "net" / "sub").mkdir(parents=True)
    (tmp_path / "net" / "README.txt").write_text("notes")
    (tmp_path / "net" / "sub" / "model.skops").write_bytes((models / "model.skops").read_bytes())
    model = load_model(tmp_path / "net")
    assert model.predict(features(iris).iloc[:2].to_dict("records")) == [0, 0]
    (tmp_path / "net" / "other.onnx").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"exactly one model file .*; found 2"):
        load_model(tmp_path / "net")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="found 0"):
        load_model(tmp_path / "empty")


def test_failures_are_one_line_load_errors(tmp_path: Path) -> None:
    (tmp_path / "corrupt.skops").write_bytes(b"PK\x03\x04 not a zip at all")
    (tmp_path / "corrupt.onnx").write_bytes(b"\x00garbage\n" * 10)
    (tmp_path / "model.bin").write_bytes(b"weights")
    cases = {
        "corrupt.skops": "cannot load",
        "corrupt.onnx": "cannot load",
        "model.bin": "no loader for .bin",
        "missing.skops": "no such file",
    }
    for name, match in cases.items():
        with pytest.raises(ModelLoadError, match=match) as failed:
            load_model(tmp_path / name)
        assert failed.value.exit_code == 3
        assert "\n" not in failed.value.message
    (tmp_path / "link.skops").symlink_to(tmp_path / "corrupt.skops")
    with pytest.raises(ModelLoadError, match="not a regular file"):
        load_model(tmp_path / "link.skops")


def test_records_with_text_columns_keep_their_types(tmp_path: Path, iris: pd.DataFrame) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    frame = features(iris).assign(
        colour=np.where(iris["target"] == 0, "red", "blue"), count=np.arange(len(iris)) % 3
    )
    sk = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(), ["colour"]),
            remainder=StandardScaler(),
            verbose_feature_names_out=False,
        ),
        LogisticRegression(max_iter=500),
    ).fit(frame, iris["target"])
    skops.io.dump(sk, tmp_path / "mixed.skops")
    model = load_model(tmp_path / "mixed.skops")
    assert model.predict(frame.to_dict("records")) == sk.predict(frame).tolist()
