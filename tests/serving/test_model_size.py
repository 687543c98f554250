"""A model file's size is capped before it is read: a small .skops file (a zip) whose
members unpack to hundreds of MB is refused, whichever channel it is promoted to, and the
operator can lift the cap on purpose (load_model(max_bytes=...), Router(max_model_bytes=...),
mvctl serve --max-model-bytes)."""

from __future__ import annotations

import io
import json
import re
import shutil
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from mvctl.errors import UsageError
from mvctl.serving import Router, load_model
from mvctl.serving.errors import ModelLoadError, ModelRefused
from mvctl.serving.loaders import MAX_MODEL_BYTES
from tests.conftest import mvctl
from tests.serving.test_router import routers, write_state, write_version

__all__ = ["routers"]  # the fixture, imported for the tests below


def tiny_model() -> Any:
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    return LogisticRegression().fit(x, [0, 1, 0, 1])


def skops_bomb(path: Path, unpacked: int) -> Path:
    """A real skops file of a fitted model with a float64 array attribute of ``unpacked``
    bytes of zeros, deflated to about a thousandth of that and written in chunks (the test
    never holds the array)."""
    import skops.io

    model = tiny_model()
    model.bomb_ = np.zeros(16)
    plain = path.with_suffix(".plain.skops")
    skops.io.dump(model, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".npy") and np.load(io.BytesIO(data)).shape == (16,):
                with out.open(info.filename, "w", force_zip64=True) as member:
                    count = unpacked // 8
                    header = {"descr": "<f8", "fortran_order": False, "shape": (count,)}
                    np.lib.format.write_array_header_1_0(member, header)
                    chunk = bytes(1 << 20)
                    for left in range(count * 8, 0, -len(chunk)):
                        member.write(chunk[:left])
            else:
                out.writestr(info.filename, data)
    plain.unlink()
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return skops_bomb(tmp_path_factory.mktemp("bomb") / "model.skops", 200 << 20)


def test_a_small_skops_file_that_unpacks_big_is_refused_before_it_is_read(bomb: Path) -> None:
    """Reproduction: a 0.6 MB .skops file promoted to shadow made every server that follows
    it allocate 640 MB (1.2 GB at the high-water mark): it was decompressed in full."""
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ModelRefused) as refused:
            load_model(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.exit_code == 1
    assert "unpack to 209,7" in refused.value.message
    assert "--max-model-bytes" in str(refused.value.hint)
    assert peak < 20 << 20, f"refusing it allocated {peak >> 20} MB"
    # The operator can lift the cap on purpose: it loads, and answers.
    model = load_model(bomb, max_bytes=300 << 20)
    assert model.predict([[0.0, 1.0]]) == [0]


def test_the_cap_is_the_operators_when_given(tmp_path: Path) -> None:
    import skops.io

    path = tmp_path / "model.skops"
    skops.io.dump(tiny_model(), path)
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    assert load_model(path).predict([[1.0, 0.0]]) == [1]  # the default cap: far above
    assert load_model(path, max_bytes=unpacked).predict([[1.0, 0.0]]) == [1]
    with pytest.raises(ModelRefused, match="over the cap of"):
        load_model(path, max_bytes=unpacked - 1)
    # Any suffix: a file bigger than the cap is refused before it is read.
    (tmp_path / "model.onnx").write_bytes(b"\0" * 4096)
    with pytest.raises(ModelRefused, match="is 4,096 bytes, over the cap of 4,000"):
        load_model(tmp_path / "model.onnx", max_bytes=4000)
    # A .skops file that is not a zip is a load error, as before.
    (tmp_path / "bad.skops").write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError):
        load_model(tmp_path / "bad.skops")
    for bad in (0, -1):
        with pytest.raises(UsageError, match="at least 1 byte"):
            load_model(path, max_bytes=bad)
        with pytest.raises(UsageError, match="at least 1 byte"):
            Router("fraud", max_model_bytes=bad)
    assert MAX_MODEL_BYTES == 2 << 30


def skops_version(dest: Path, name: str, weights: Path) -> None:
    """A version directory holding ``weights`` as model.skops, and its record."""
    write_version(dest, name, "")
    (dest / "versions" / name / "model.txt").unlink()
    shutil.copyfile(weights, dest / "versions" / name / "model.skops")
    record = dest / ".mvctl" / "records" / f"{name}.json"
    data = json.loads(record.read_text())
    data.update(weights="model.skops", sizes={"model.skops": weights.stat().st_size})
    record.write_text(json.dumps(data))


@pytest.fixture
def bomb_host(tmp_path: Path, bomb: Path) -> Path:
    """Production a small real model, the shadow the bomb, as mvctl pull leaves a DIR."""
    import skops.io

    dest = tmp_path / "host"
    good = tmp_path / "good.skops"
    skops.io.dump(tiny_model(), good)
    skops_version(dest, "v1.0.0", good)
    skops_version(dest, "v2.0.0", bomb)
    write_state(dest, {"production": ("v1.0.0", None), "shadow": ("v2.0.0", None)})
    (dest / "current").symlink_to("versions/v1.0.0")
    return dest


def test_a_bomb_in_the_shadow_is_refused_and_production_serves(
    routers: Callable[..., Router], bomb_host: Path
) -> None:
    router = routers("fraud")
    assert router.refresh(bomb_host)
    assert router.served() == {"production": "v1.0.0"}
    assert isinstance(router.errors["shadow"], ModelRefused)
    assert router.predict([[1.0, 0.0]], key="k").outputs == [1]
    lifted = routers("fraud", max_model_bytes=300 << 20)
    assert lifted.refresh(bomb_host)
    assert lifted.served() == {"production": "v1.0.0", "shadow": "v2.0.0"}


def _hwm_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", text)
    assert found is not None
    return int(found.group(1)) / 1024


@pytest.mark.slow
def test_a_served_bomb_costs_the_server_nothing(bomb_host: Path) -> None:
    """End to end: `mvctl serve` serving production is told the shadow is the bomb: it
    logs the refusal, keeps answering, and its high-water mark does not move by the 200 MB
    the shadow unpacks to."""
    from tests.web.test_serve import AUTH, served

    write_state(bomb_host, {"production": ("v1.0.0", None)})
    with served(bomb_host) as server, httpx.Client(base_url=server.url, headers=AUTH) as client:
        before = _hwm_mb(server.proc.pid)
        write_state(bomb_host, {"production": ("v1.0.0", None), "shadow": ("v2.0.0", None)})
        deadline = time.monotonic() + 60
        while not any("refusing to load" in line for line in server.lines):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        answer = client.post("/predict", json=[{"a": 1.0, "b": 0.0}])
        assert answer.status_code == 200, answer.text
        assert answer.json()["channel"] == "production"
        grown = _hwm_mb(server.proc.pid) - before
    assert grown < 50, f"the server grew by {grown:.0f} MB refusing a 200 KB shadow model"
    proc = mvctl(bomb_host.parent, "serve", str(bomb_host), "--max-model-bytes", "0")
    assert proc.returncode == 2 and "--max-model-bytes" in proc.stderr
