"""The shadow queue is bounded in bytes as well as in copies: each queued copy keeps a
request's decoded inputs alive, so behind a slow shadow, big but legal requests are
dropped (and counted) rather than piled up in the server's memory."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mvctl.errors import UsageError
from mvctl.serving import Router
from mvctl.serving.router import SHADOW_QUEUE_BYTES, footprint
from mvctl.serving.shadow import ShadowWorker
from tests.conftest import Registry
from tests.serving.test_router import KEYS, Blocks, Const, channel, metric, routers, wait_for
from tests.web import test_serve

__all__ = ["routers"]  # the fixture, imported for the tests below

template, reg = test_serve.template, test_serve.reg


def test_the_shadow_worker_drops_what_would_exceed_its_bytes() -> None:
    release, entered = threading.Event(), threading.Event()
    ran: list[str] = []
    dropped: list[int] = []

    def run(item: str) -> None:
        entered.set()
        assert release.wait(30)
        ran.append(item)

    worker: ShadowWorker[str] = ShadowWorker(
        100, run, lambda: dropped.append(1), "test-shadow", max_bytes=1000
    )
    worker.start()
    worker.submit("first", 400)
    assert entered.wait(10)
    assert worker.pending_bytes == 400  # a copy's bytes count while it runs
    worker.submit("second", 500)
    worker.submit("too big", 200)  # 1100 > 1000: dropped, though the queue has room
    worker.submit("fits", 100)
    worker.submit("never", 1001)
    assert len(dropped) == 2 and worker.pending_bytes == 1000
    release.set()
    wait_for(lambda: len(ran) == 3 and worker.pending_bytes == 0, "the queued copies")
    assert ran == ["first", "second", "fits"]
    worker.submit("after", 1000)
    wait_for(lambda: ran[-1] == "after", "a copy that fits again")
    assert len(dropped) == 2
    worker.close(1)


def test_big_requests_behind_a_slow_shadow_are_dropped_by_bytes(
    routers: Callable[..., Router],
) -> None:
    """Reproduction: the queue was bounded in copies only (1000): 30 legal 1.6 MB requests
    behind a slow shadow held 602 MB more in the server."""
    rows = [[1.5, 2.5, 3.5, 4.5] for _ in range(10_000)]
    cost = footprint(rows) + 300_000  # the inputs, and the body they were decoded from
    assert 1 << 20 < cost < 3 << 20
    router = routers("fraud", shadow_queue_bytes=3 * cost + cost // 2)
    shadow = Blocks("shadow")
    router.set_channels(
        [channel("production", "v1", Const("primary")), channel("shadow", "v2", shadow)]
    )
    router.predict(rows, key="first", body_size=300_000)
    assert shadow.entered.wait(10)  # the worker holds this copy: its bytes still count
    for key in KEYS[:20]:
        assert router.predict(rows, key=key, body_size=300_000).outputs == ["primary"] * 10_000
    assert metric(router, "mvctl_shadow_dropped_total") == 20 - 2  # room for 3 copies in all
    shadow.release.set()
    wait_for(
        lambda: metric(router, "mvctl_requests_total", channel="shadow", version="v2") == 3,
        "the copies that fit",
    )
    # Small requests still queue by the thousand under the default.
    assert SHADOW_QUEUE_BYTES == 64 << 20 and 1000 * footprint([[1.0] * 4]) < SHADOW_QUEUE_BYTES
    with pytest.raises(UsageError, match="shadow_queue_bytes"):
        Router("fraud", shadow_queue_bytes=0)


def test_a_copys_footprint_counts_rows_and_values() -> None:
    small, big = [[1.0] * 4], [[1.0] * 4 for _ in range(1000)]
    assert 24 * 4 < footprint(small) < 500
    assert 1000 * (24 * 4 + 56) < footprint(big) < 1000 * 300
    records = [{"a": 1.0, "b": 2.0} for _ in range(100)]
    assert footprint(records) > 100 * (24 * 2 + 64)
    assert footprint([1, 2, 3]) > 0  # rows without a length (a custom loader's inputs)


SLOW_SHADOW = "tests.serving.test_shadow_bytes:slow_shadow_loader"


class _Slow:
    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, x: Any) -> Any:
        time.sleep(2)  # a candidate much slower than production
        return self.model.predict(x)


def slow_shadow_loader(path: Path) -> Any:
    """skops, except that v0.1.0 (the shadow of tests/web/test_serve's registry) is slow."""
    import skops.io

    target = path if path.is_file() else next(path.glob("*.skops"))
    model = skops.io.load(target)
    return _Slow(model) if "v0.1.0" in str(path) else model


def _rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", text)
    assert found is not None
    return int(found.group(1)) / 1024


@pytest.mark.slow
def test_a_slow_shadow_never_makes_callers_requests_pile_up_in_memory(
    reg: Registry, tmp_path: Path
) -> None:
    from tests.web.test_serve import AUTH, MODEL, pull, served

    host = tmp_path / "host"
    pull(reg, host, MODEL, "production", "shadow")
    rows = 100_000  # ~1.6 MB of JSON, far under the 8 MiB cap
    body = (
        b'{"inputs":[{"name":"x","shape":[%d,4],"datatype":"FP64","data":[' % rows
        + b",".join([b"1.5"] * (rows * 4))
        + b"]}]}"
    )
    with (
        served(host, "--loader", SLOW_SHADOW, "--hash-outputs") as server,
        httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client,
    ):
        before = _rss_mb(server.proc.pid)
        for _ in range(30):
            answer = client.post(
                f"/v2/models/{MODEL}/infer",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["parameters"]["channel"] == "production"
        grown = _rss_mb(server.proc.pid) - before
        text = client.get("/metrics").text
    dropped = re.search(r"^mvctl_shadow_dropped_total (\S+)$", text, re.MULTILINE)
    # A copy keeps ~20 MB of decoded inputs alive: the default 64 MiB holds three.
    assert dropped is not None and float(dropped.group(1)) >= 10, text
    assert grown < 300, f"the server holds {grown:.0f} MB more after 30 answered requests"
