"""The in-process router: sticky weighted canary, shadow off the caller's path, hot swap,
decision log, metrics, and refresh() from a real host directory."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mvctl.serving import Loaded, Router, routing
from mvctl.serving.errors import InvalidRequest, NotReady, PredictError

KEYS = [f"customer-{i}" for i in range(20_000)]


class Const:
    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    def predict(self, inputs: Any) -> list[Any]:
        self.calls += 1
        return [self.value] * len(inputs)


class Raises:
    def __init__(self) -> None:
        self.calls = 0

    def predict(self, inputs: Any) -> list[Any]:
        self.calls += 1
        raise RuntimeError("shadow model is broken")


class Picky:
    def predict(self, inputs: Any) -> list[Any]:
        raise InvalidRequest("two columns, please")


class Sleeps:
    def predict(self, inputs: Any) -> list[Any]:
        time.sleep(1)
        return ["slow"] * len(inputs)


class Blocks:
    """predict() waits for ``release``; ``entered`` says a call has started."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.entered = threading.Event()
        self.release = threading.Event()

    def predict(self, inputs: Any) -> list[Any]:
        self.entered.set()
        assert self.release.wait(30)
        return [self.value] * len(inputs)


def channel(name: str, version: str, model: Any, weight: float | None = None) -> Loaded:
    return Loaded(name, version, model, weight, version)


@pytest.fixture
def routers() -> Iterator[Callable[..., Router]]:
    made: list[Router] = []

    def make(*args: Any, **kw: Any) -> Router:
        router = Router(*args, **kw)
        made.append(router)
        return router

    yield make
    for router in made:
        router.close(timeout=0.1)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def metric(router: Router, name: str, **labels: str) -> float:
    text = router.metrics()[0].decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        got_name, _, got_labels = series.partition("{")
        got = ",".join(sorted(got_labels.rstrip("}").split(","))) if got_labels else ""
        if got_name == name and got == want:
            return float(value)
    raise AssertionError(f"no {name}{{{want}}} in:\n{text}")


# -- routing -------------------------------------------------------------------------


def canary_router(make: Callable[..., Router], weight: float) -> Router:
    router = make("fraud")
    router.set_channels(
        [channel("production", "v1.0.0", Const(0)), channel("canary", "v1.1.0", Const(1), weight)]
    )
    return router


SUBPROCESS_ROUTES = """
import json, sys
from mvctl.serving import Loaded, Router, routing

class M:
    def predict(self, inputs):
        return []

router = Router("fraud")
router.set_channels([Loaded("production", "v1.0.0", M(), None, "a"),
                     Loaded("canary", "v1.1.0", M(), float(sys.argv[1]), "b")])
keys = json.load(sys.stdin)
json.dump([router.route(k) for k in keys], sys.stdout)
"""


def test_canary_share_is_sticky_across_routers_and_processes(
    routers: Callable[..., Router],
) -> None:
    first, second = canary_router(routers, 10), canary_router(routers, 10)
    routes = [first.route(k) for k in KEYS]
    share = routes.count("canary") / len(KEYS)
    assert 0.09 <= share <= 0.11, share
    assert [second.route(k) for k in KEYS] == routes
    proc = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_ROUTES, "10"],
        input=json.dumps(KEYS),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout) == routes

    # The bucket is the documented formula, so any implementation can agree with it; its
    # first term is the 0.01% bucket of earlier routers, so a weight of two decimals routes
    # every key as they did.
    for key, route in zip(KEYS[:2000], routes, strict=False):
        digest = hashlib.sha256(("fraud" + "\0" + key).encode()).digest()
        coarse = int.from_bytes(digest[:8], "big") % 10_000
        bucket = (coarse * 10_000 + int.from_bytes(digest[8:16], "big") % 10_000) / 1_000_000
        assert route == ("canary" if bucket < 10 else "production")
        assert route == ("canary" if coarse / 100 < 10 else "production")
        assert routing.bucket("fraud", key) == bucket


def test_raising_the_weight_only_moves_keys_to_the_canary(routers: Callable[..., Router]) -> None:
    router = canary_router(routers, 10)
    at_10 = {k for k in KEYS if router.route(k) == "canary"}
    router.set_channels(
        [channel("production", "v1.0.0", Const(0)), channel("canary", "v1.1.0", Const(1), 25)]
    )
    at_25 = {k for k in KEYS if router.route(k) == "canary"}
    assert at_10 < at_25
    assert 0.24 <= len(at_25) / len(KEYS) <= 0.26
    # Another model's keys are spread independently (the model is part of the hash).
    other = routers("churn")
    other.set_channels(
        [channel("production", "v1.0.0", Const(0)), channel("canary", "v1.1.0", Const(1), 10)]
    )
    assert {k for k in KEYS if other.route(k) == "canary"} != at_10


def test_no_canary_and_a_zero_weight_route_everything_to_the_primary(
    routers: Callable[..., Router],
) -> None:
    router = routers("fraud")
    with pytest.raises(NotReady) as not_ready:
        router.route("k")
    assert not_ready.value.exit_code == 3 and not router.ready
    router.set_channels(
        [channel("production", "v1.0.0", Const(0)), channel("staging", "v2", Const(2))]
    )
    assert router.ready and router.served() == {"production": "v1.0.0"}  # staging: ignored
    assert {router.route(k) for k in KEYS[:1000]} == {"production"}
    router.set_channels(
        [channel("production", "v1.0.0", Const(0)), channel("canary", "v2", Const(2), 0)]
    )
    assert {router.route(k) for k in KEYS[:1000]} == {"production"}
    with pytest.raises(InvalidRequest, match="0-100"):
        router.set_channels(
            [channel("production", "v1", Const(0)), channel("canary", "v2", Const(2), 101)]
        )
    assert router.served() == {"production": "v1.0.0", "canary": "v2"}  # unchanged


def test_request_key() -> None:
    assert Router.request_key("order-17", b"{}") == "order-17"
    assert Router.request_key(None, b'{"x": 1}') == hashlib.sha256(b'{"x": 1}').hexdigest()
    assert Router.request_key("x" * 256, b"") == "x" * 256
    for bad in ("", "x" * 257, "a\nb", "a\x00b", "caf\u00e9", "tab\there"):
        with pytest.raises(InvalidRequest, match="invalid request key"):
            Router.request_key(bad, b"")


# -- predict, errors, the decision log, metrics ----------------------------------------


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_decision_and_outcome_lines(routers: Callable[..., Router], tmp_path: Path) -> None:
    log = tmp_path / "logs" / "decisions.jsonl"
    router = routers("fraud", decision_log=log)
    big = "x" * 5000
    router.set_channels(
        [channel("production", "v1.0.0", Const(7)), channel("canary", "v1.1.0", Const(big), 50)]
    )
    to_canary = next(k for k in KEYS if router.route(k) == "canary")
    to_primary = next(k for k in KEYS if router.route(k) == "production")
    answer = router.predict([[1.0, 2.0], [3.0, 4.0]], key=to_primary)
    assert (answer.channel, answer.version, answer.key, answer.outputs) == (
        "production",
        "v1.0.0",
        to_primary,
        [7, 7],
    )
    assert router.predict([[1.0]], key=to_canary).outputs == [big]
    router.outcome(to_primary, {"label": 1})
    with pytest.raises(InvalidRequest):
        router.outcome(to_primary, object())
    router.close()

    decision, canary, outcome = lines(log)
    fields = {"time", "key", "model", "channel", "version", "latency_ms", "output", "role"}
    assert set(decision) == fields and decision["model"] == "fraud"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", decision["time"])
    assert decision["key"] == to_primary and decision["output"] == [7, 7]
    assert (decision["channel"], decision["version"], decision["role"]) == (
        "production",
        "v1.0.0",
        "primary",
    )
    assert 0 <= decision["latency_ms"] < 1000
    # Over 4 KiB of output: its sha256 instead.
    assert canary["role"] == "canary" and "output" not in canary
    expected = hashlib.sha256(json.dumps([big], separators=(",", ":")).encode()).hexdigest()
    assert canary["output_sha256"] == expected
    assert outcome == {
        "time": outcome["time"],
        "key": to_primary,
        "outcome": {"label": 1},
        "kind": "outcome",
    }

    # Appended, never truncated; without outputs, hashes only.
    again = routers("fraud", decision_log=log, log_outputs=False)
    again.set_channels([channel("production", "v1.0.0", Const(7))])
    again.predict([[1.0]], key="k")
    again.close()
    all_lines = lines(log)
    assert len(all_lines) == 4 and all_lines[:3] == [decision, canary, outcome]
    assert "output" not in all_lines[3]
    assert all_lines[3]["output_sha256"] == hashlib.sha256(b"[7]").hexdigest()


def test_model_failure_is_counted_logged_and_raised(
    routers: Callable[..., Router], tmp_path: Path
) -> None:
    log = tmp_path / "decisions.jsonl"
    router = routers("fraud", decision_log=log)
    with pytest.raises(NotReady):
        router.predict([[1]], key="k")
    router.set_channels([channel("production", "v1.0.0", Raises())])
    with pytest.raises(PredictError, match=r"production v1\.0\.0 failed: RuntimeError") as failed:
        router.predict([[1]], key="k")
    assert failed.value.exit_code == 3
    assert metric(router, "mvctl_request_errors_total", channel="production", version="v1.0.0") == 1
    assert metric(router, "mvctl_requests_total", channel="production", version="v1.0.0") == 1
    with pytest.raises(InvalidRequest):
        router.predict([[1]], key="bad\nkey")
    # Inputs the model refuses are the caller's mistake: answered, not counted against it,
    # and not copied to the shadow.
    shadow = Const("shadow")
    router.set_channels([channel("production", "v1.1.0", Picky()), channel("shadow", "v9", shadow)])
    with pytest.raises(InvalidRequest, match="two columns"):
        router.predict([[1]], key="k")
    assert metric(router, "mvctl_requests_total", channel="production", version="v1.1.0") == 1
    assert metric(router, "mvctl_request_errors_total", channel="production", version="v1.1.0") == 0
    router.set_channels(
        [channel("production", "v1.2.0", Const(1)), channel("shadow", "v9", shadow)]
    )
    router.predict([[1]], key="k")
    wait_for(lambda: shadow.calls > 0, "the shadow copy")
    router.close()  # FIFO: a copy of the refused request would have been answered first
    first, second, *_ = lines(log)
    assert first["error"] == "RuntimeError: shadow model is broken" and "output" not in first
    assert second["error"] == "InvalidRequest: two columns, please" and shadow.calls == 1


def test_metrics_name_channel_and_version(routers: Callable[..., Router]) -> None:
    router = routers("fraud")
    router.set_channels(
        [channel("production", "v1.0.0", Const(0)), channel("canary", "v1.1.0", Const(1), 30)]
    )
    for key in KEYS[:200]:
        router.predict([[1]], key=key)
    _, content_type = router.metrics()
    assert content_type.startswith("text/plain")
    canary = sum(router.route(k) == "canary" for k in KEYS[:200])
    assert metric(router, "mvctl_requests_total", channel="canary", version="v1.1.0") == canary
    assert metric(router, "mvctl_requests_total", channel="production", version="v1.0.0") == (
        200 - canary
    )
    assert (
        metric(router, "mvctl_request_latency_seconds_count", channel="canary", version="v1.1.0")
        == canary
    )
    assert metric(router, "mvctl_reloads_total") == 0  # set_channels is no hot swap from DIR
    assert metric(router, "mvctl_served_info", channel="canary", version="v1.1.0") == 1
    assert metric(router, "mvctl_shadow_dropped_total") == 0
    assert metric(router, "mvctl_shadow_errors_total") == 0
    router.set_channels([channel("production", "v1.2.0", Const(0))])
    text = router.metrics()[0].decode()
    assert 'mvctl_served_info{channel="production",version="v1.2.0"} 1.0' in text
    assert "mvctl_served_info{" + 'channel="canary"' not in text
    assert 'mvctl_served_info{channel="production",version="v1.0.0"}' not in text
    # Counters of what served before stay: they are totals.
    assert metric(router, "mvctl_requests_total", channel="canary", version="v1.1.0") == canary
    # Each router has its own registry.
    assert "customer" not in text and routers("fraud").metrics()[0].count(b"v1.1.0") == 0


# -- the shadow ------------------------------------------------------------------------


def p99_of_predicts(router: Router, n: int = 2000) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        answer = router.predict([[float(i)]], key=KEYS[i])
        times.append(time.perf_counter() - start)
        assert answer.outputs == ["primary"] and answer.channel == "production"
    return sorted(times)[int(n * 0.99) - 1]


@pytest.mark.parametrize("shadow", [Raises, Sleeps])
def test_a_failing_or_slow_shadow_does_not_reach_the_caller(
    routers: Callable[..., Router], tmp_path: Path, shadow: type
) -> None:
    log = tmp_path / "decisions.jsonl"
    router = routers("fraud", decision_log=log)
    primary = channel("production", "v1.0.0", Const("primary"))
    router.set_channels([primary])
    p99_of_predicts(router, 200)  # warm-up
    without = p99_of_predicts(router)
    model = shadow()
    router.set_channels([primary, channel("shadow", "v2.0.0", model)])
    assert router.served() == {"production": "v1.0.0", "shadow": "v2.0.0"}
    with_shadow = p99_of_predicts(router)
    assert with_shadow - without < 0.005, (with_shadow, without)
    if shadow is Raises:
        wait_for(lambda: metric(router, "mvctl_shadow_errors_total") >= 100, "shadow errors")
        failed = metric(router, "mvctl_request_errors_total", channel="shadow", version="v2.0.0")
        assert failed >= 100
    else:
        # One call a second: nearly every copy is dropped, none waited for.
        assert metric(router, "mvctl_shadow_dropped_total") >= 2000 - 1000 - 5
    router.close(timeout=0.1)
    logged = lines(log)
    shadows = [line for line in logged if line["role"] == "shadow"]
    primaries = [line for line in logged if line["role"] == "primary"]
    assert len(primaries) == 200 + 2000 + 2000
    assert {line["output"][0] for line in primaries} == {"primary"}
    if shadow is Raises:
        assert shadows and all(line["error"].startswith("RuntimeError") for line in shadows)


def test_a_full_shadow_queue_drops_and_counts_never_blocks(
    routers: Callable[..., Router],
) -> None:
    router = routers("fraud", shadow_queue=5)
    shadow = Blocks("shadow")
    router.set_channels(
        [channel("production", "v1.0.0", Const("primary")), channel("shadow", "v2", shadow)]
    )
    router.predict([[1]], key="first")
    assert shadow.entered.wait(10)  # the worker holds the first copy; the queue is empty
    done = threading.Event()
    answers: list[Any] = []

    def burst() -> None:
        answers.extend(router.predict([[1]], key=k).outputs for k in KEYS[:100])
        done.set()

    threading.Thread(target=burst, daemon=True).start()
    assert done.wait(10), "predict blocked on a full shadow queue"
    assert answers == [["primary"]] * 100
    assert metric(router, "mvctl_shadow_dropped_total") == 95
    shadow.release.set()
    wait_for(
        lambda: metric(router, "mvctl_requests_total", channel="shadow", version="v2") == 6,
        "the queued shadow copies",
    )


def test_a_replaced_shadows_backlog_is_dropped_not_answered(
    routers: Callable[..., Router],
) -> None:
    """Reproduction: copies queued for a shadow that sleeps kept the worker busy long after
    the next candidate was swapped in (its copies waited behind a thousand stale ones)."""
    router = routers("fraud", shadow_queue=50)
    primary = channel("production", "v1.0.0", Const("primary"))
    slow = Blocks("slow")
    router.set_channels([primary, channel("shadow", "v2.0.0", slow)])
    router.predict([[1]], key="first")
    assert slow.entered.wait(10)  # the worker holds this copy
    for key in KEYS[:10]:
        router.predict([[1]], key=key)  # queued behind it, for v2.0.0
    fresh = Const("fresh")
    router.set_channels([primary, channel("shadow", "v3.0.0", fresh)])
    router.predict([[1]], key="after the swap")
    slow.release.set()
    wait_for(
        lambda: metric(router, "mvctl_requests_total", channel="shadow", version="v3.0.0") == 1,
        "the new shadow's copy",
    )
    assert fresh.calls == 1
    assert metric(router, "mvctl_shadow_dropped_total") == 10


# -- hot swap --------------------------------------------------------------------------


def test_a_request_in_flight_finishes_on_the_version_it_started_with(
    routers: Callable[..., Router],
) -> None:
    router = routers("fraud")
    old = Blocks("old")
    router.set_channels([channel("production", "v1.0.0", old)])
    result: list[Any] = []
    request = threading.Thread(target=lambda: result.append(router.predict([[1]], key="k")))
    request.start()
    assert old.entered.wait(10)
    router.set_channels([channel("production", "v2.0.0", Const("new"))])
    assert router.served() == {"production": "v2.0.0"}
    nxt = router.predict([[1]], key="k")
    assert (nxt.version, nxt.outputs) == ("v2.0.0", ["new"])
    old.release.set()
    request.join(10)
    (answer,) = result
    assert (answer.version, answer.outputs) == ("v1.0.0", ["old"])


# -- refresh() from a host directory ---------------------------------------------------


class TextModel:
    """Answers the text its weights file holds (``--loader`` for the tests below)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def predict(self, x: Any) -> Any:
        return [self.text] * len(x)


LOADS: list[Path] = []


def text_model(path: Path) -> TextModel:
    LOADS.append(path)
    text = path.read_text()
    if text == "BROKEN":
        raise ValueError("cannot parse the weights")
    return TextModel(text)


TEXT_LOADER = "tests.serving.test_router:text_model"
COMMIT = "c0ffee" + "0" * 34


def write_version(dest: Path, name: str, text: str) -> None:
    """A version directory and its record, as mvctl pull leaves them."""
    (dest / "versions" / name).mkdir(parents=True)
    (dest / "versions" / name / "model.txt").write_text(text)
    records = dest / ".mvctl" / "records"
    records.mkdir(parents=True, exist_ok=True)
    record = {
        "dir": name,
        "model": "fraud",
        "version": name,
        "commit": COMMIT,
        "weights": "model.txt",
        "sizes": {"model.txt": len(text)},
    }
    (records / f"{name}.json").write_text(json.dumps(record))


def write_state(dest: Path, channels: dict[str, tuple[str, float | None]]) -> None:
    """state.json naming ``channels`` (channel -> (dir, weight)), the first the primary;
    replaced by rename, as mvctl pull does."""
    primary, (name, _) = next(iter(channels.items()))
    state = {
        "model": "fraud",
        "channel": primary,
        "version": name,
        "dir": name,
        "commit": COMMIT,
        "since": "2026-01-01T00:00:00Z",
        "repo": "origin",
        "channels": {
            c: {"dir": d, "version": d, "commit": COMMIT, "since": "", "weight": w}
            for c, (d, w) in channels.items()
        },
    }
    tmp = dest / ".state.json.tmp"
    tmp.write_text(json.dumps(state))
    tmp.replace(dest / "state.json")


@pytest.fixture
def host(tmp_path: Path) -> Path:
    dest = tmp_path / "host"
    for name, text in {"v1.0.0": "one", "v2.0.0": "two", "v3.0.0": "BROKEN"}.items():
        write_version(dest, name, text)
    LOADS.clear()
    return dest


def test_refresh_loads_only_what_changed_and_never_swaps_in_a_failed_load(
    routers: Callable[..., Router], host: Path
) -> None:
    router = routers("fraud")
    assert not router.refresh(host, loader=TEXT_LOADER)  # no state.json yet
    assert not router.ready
    # A followed channel that is neither a canary nor the shadow is not even loaded.
    write_state(host, {"production": ("v1.0.0", None), "staging": ("v3.0.0", None)})
    assert router.refresh(host, loader=TEXT_LOADER)
    assert router.predict([[1]], key="k").outputs == ["one"]
    assert not router.refresh(host, loader=TEXT_LOADER) and len(LOADS) == 1
    assert router.served() == {"production": "v1.0.0"} and router.errors == {}

    write_state(host, {"production": ("v1.0.0", None), "canary": ("v2.0.0", 10.0)})
    assert router.refresh(host, loader=TEXT_LOADER)
    assert router.served() == {"production": "v1.0.0", "canary": "v2.0.0"}
    assert len(LOADS) == 2  # production was not loaded again
    share = sum(router.route(k) == "canary" for k in KEYS) / len(KEYS)
    assert 0.09 <= share <= 0.11
    write_state(host, {"production": ("v1.0.0", None), "canary": ("v2.0.0", 25.0)})
    assert router.refresh(host, loader=TEXT_LOADER) and len(LOADS) == 2  # a weight: no load
    assert router.loaded()[1].weight == 25.0

    # A model that fails to load is never swapped in; it is not retried until it changes.
    write_state(host, {"production": ("v3.0.0", None), "canary": ("v2.0.0", 25.0)})
    assert not router.refresh(host, loader=TEXT_LOADER)
    error = router.errors["production"]
    assert error.exit_code == 3 and "cannot parse the weights" in error.message
    assert router.served() == {"production": "v1.0.0", "canary": "v2.0.0"}
    primary_key = next(k for k in KEYS if router.route(k) == "production")
    assert router.predict([[1]], key=primary_key).outputs == ["one"]
    assert not router.refresh(host, loader=TEXT_LOADER) and len(LOADS) == 3
    assert router.errors["production"] is error

    # The canary's model is promoted: the same directory, nothing loaded; the shadow joins.
    write_version(host, "v4.0.0", "four")
    write_state(host, {"production": ("v2.0.0", None), "shadow": ("v4.0.0", None)})
    assert router.refresh(host, loader=TEXT_LOADER)
    assert router.served() == {"production": "v2.0.0", "shadow": "v4.0.0"}
    assert LOADS[3:] == [host.resolve() / "versions" / "v4.0.0" / "model.txt"]
    assert router.errors == {}
    assert router.predict([[1]], key=primary_key).outputs == ["two"]


def test_a_primary_that_never_loaded_serves_nothing(
    routers: Callable[..., Router], host: Path
) -> None:
    router = routers("fraud")
    write_state(host, {"production": ("v3.0.0", None), "canary": ("v2.0.0", 10.0)})
    assert not router.refresh(host, loader=TEXT_LOADER)
    assert not router.ready and set(router.errors) == {"production"}
    with pytest.raises(NotReady):
        router.predict([[1]], key="k")


def test_follow_swaps_when_state_changes(routers: Callable[..., Router], host: Path) -> None:
    router = routers("fraud")
    write_state(host, {"production": ("v1.0.0", None)})
    swaps: list[dict[str, str]] = []
    errors: list[Exception] = []
    stop = threading.Event()
    follower = threading.Thread(
        target=router.follow,
        args=(host,),
        kwargs={
            "stop": stop,
            "interval": 0.01,
            "loader": TEXT_LOADER,
            "on_swap": swaps.append,
            "on_error": errors.append,
        },
    )
    follower.start()
    try:
        wait_for(lambda: swaps == [{"production": "v1.0.0"}], "the first load")
        write_state(host, {"production": ("v3.0.0", None)})
        wait_for(lambda: len(errors) == 1, "the load error")
        write_state(host, {"production": ("v2.0.0", None), "canary": ("v1.0.0", 5.0)})
        wait_for(lambda: len(swaps) == 2, "the second swap")
        assert swaps[1] == {"production": "v2.0.0", "canary": "v1.0.0"}
        assert "cannot parse the weights" in str(errors[0]) and len(errors) == 1
        assert len(LOADS) == 3  # v1, v3 once, v2; v1 again for the canary: reused
    finally:
        stop.set()
        follower.join(10)
    assert not follower.is_alive()


@pytest.mark.slow
def test_refresh_from_a_directory_mvctl_pull_wrote(
    routers: Callable[..., Router], tmp_path: Path
) -> None:
    """skops models registered, promoted (a weighted canary too) and pulled for real."""
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from mvctl.channels.promotion import promote
    from mvctl.registry.register import RegisterRequest, register
    from tests.conftest import make_registry, mvctl

    x, y = load_iris(return_X_y=True)
    trained = {
        "v0.1.0": LogisticRegression(max_iter=500).fit(x, y),
        "v0.2.0": LogisticRegression(C=0.001, max_iter=500).fit(x, y),
    }
    reg = make_registry(tmp_path)
    for version in ("v0.1.0", "v0.2.0", "v0.3.0"):
        weights = reg.root / "models" / "model.skops"
        weights.parent.mkdir(exist_ok=True)
        if version in trained:
            skops.io.dump(trained[version], weights)
        else:
            weights.write_bytes(b"registered, verified, and not a skops file")
        req = RegisterRequest(
            model="fraud", cwd=reg.root, weights="models/model.skops", version=version, push=True
        )
        register(req)
    host = tmp_path / "host"
    rows = x[::10].tolist()

    def pull(version: str | None, *channels: str) -> None:
        if version is not None:
            promote(reg.root, "fraud", version, "production", push=True)
        flags = [arg for channel in channels for arg in ("--channel", channel)]
        proc = mvctl(tmp_path, "pull", str(reg.origin), "fraud", *flags, "--dest", str(host))
        assert proc.returncode == 0, proc.stderr

    router = routers("fraud", decision_log=tmp_path / "decisions.jsonl")
    pull("v0.1.0")
    assert router.refresh(host)
    answer = router.predict(rows, key="k")
    assert (answer.version, answer.outputs) == (
        "v0.1.0",
        trained["v0.1.0"].predict(x[::10]).tolist(),
    )
    assert not router.refresh(host)

    pull("v0.2.0")
    assert router.refresh(host)
    answer = router.predict(rows, key="k")
    assert (answer.version, answer.outputs) == (
        "v0.2.0",
        trained["v0.2.0"].predict(x[::10]).tolist(),
    )
    assert answer.outputs != trained["v0.1.0"].predict(x[::10]).tolist()

    # The canary: v0.1.0 at 10% (promote --weight), pulled beside production.
    promote(reg.root, "fraud", "v0.1.0", "canary", push=True, weight=10)
    pull(None, "production", "canary")
    assert router.refresh(host)
    assert router.served() == {"production": "v0.2.0", "canary": "v0.1.0"}
    assert router.loaded()[1].weight == 10
    share = sum(router.route(k) == "canary" for k in KEYS) / len(KEYS)
    assert 0.09 <= share <= 0.11
    to_canary = next(k for k in KEYS if router.route(k) == "canary")
    answer = router.predict(rows, key=to_canary)
    assert (answer.channel, answer.version) == ("canary", "v0.1.0")
    assert answer.outputs == trained["v0.1.0"].predict(x[::10]).tolist()

    # A version that verifies but does not load is never swapped in.
    pull("v0.3.0", "production", "canary")
    assert not router.refresh(host)  # nothing else changed: nothing swapped
    assert router.served()["production"] == "v0.2.0"
    assert "cannot load" in router.errors["production"].message
    primary_key = next(k for k in KEYS if router.route(k) == "production")
    assert router.predict(rows, key=primary_key).version == "v0.2.0"


def test_a_full_disk_loses_decision_lines_never_requests(routers: Callable[..., Router]) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    router = routers("fraud", decision_log=Path("/dev/full"))
    router.set_channels([channel("production", "v1.0.0", Const(1))])
    assert [router.predict([[1]], key=k).outputs for k in KEYS[:3]] == [[1]] * 3
    router.outcome("k", 1)
    assert router._log is not None and router._log.write_errors == 4
    router.close()  # nothing is left to flush: no error


def test_follow_survives_a_failing_callback(routers: Callable[..., Router], host: Path) -> None:
    router = routers("fraud")
    write_state(host, {"production": ("v1.0.0", None)})
    errors: list[Exception] = []
    swaps: list[dict[str, str]] = []

    def on_swap(served: dict[str, str]) -> None:
        swaps.append(served)
        if len(swaps) == 1:
            raise RuntimeError("the server's callback broke")

    stop = threading.Event()
    kwargs = {"stop": stop, "interval": 0.01, "loader": TEXT_LOADER}
    follower = threading.Thread(
        target=router.follow,
        args=(host,),
        kwargs={**kwargs, "on_swap": on_swap, "on_error": errors.append},
    )
    follower.start()
    try:
        wait_for(lambda: len(errors) == 1, "the callback's error")
        assert "unexpected RuntimeError: the server's callback broke" in str(errors[0])
        write_state(host, {"production": ("v2.0.0", None)})
        wait_for(lambda: router.served() == {"production": "v2.0.0"}, "the next swap")
        wait_for(lambda: len(swaps) == 2, "the next callback")
    finally:
        stop.set()
        follower.join(10)
    assert not follower.is_alive()
