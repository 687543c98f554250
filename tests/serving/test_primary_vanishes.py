"""A fault on the host: the primary's version directory (or its record) goes missing, as
a disk error or an operator freeing space would make it. state.json still names it the
primary, so the router keeps what it has loaded: the weighted canary never becomes the
primary (it would answer every request)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mvctl.serving import Router
from tests.conftest import Registry
from tests.serving import test_pull_channels as base
from tests.serving.test_router import (
    KEYS,
    TEXT_LOADER,
    routers,
    write_state,
    write_version,
)

__all__ = ["routers"]  # the fixture, imported for the tests below

template, reg, host = base.template, base.reg, base.host


def test_a_primary_that_vanishes_keeps_serving_what_is_loaded(
    routers: Callable[..., Router], tmp_path: Path
) -> None:
    dest = tmp_path / "host"
    for name, text in {"v1.0.0": "one", "v2.0.0": "two", "v4.0.0": "four"}.items():
        write_version(dest, name, text)
    both = {"production": ("v1.0.0", None), "canary": ("v2.0.0", 10.0)}
    write_state(dest, both)
    router = routers("fraud")
    assert router.refresh(dest, loader=TEXT_LOADER)
    before = [router.route(k) for k in KEYS]
    assert 0.09 < before.count("canary") / len(KEYS) < 0.11
    # The fault: production's directory goes; any rewrite of state.json follows.
    shutil.rmtree(dest / "versions" / "v1.0.0")
    write_state(dest, both)
    assert not router.refresh(dest, loader=TEXT_LOADER)
    assert router.served() == {"production": "v1.0.0", "canary": "v2.0.0"}
    assert [router.route(k) for k in KEYS] == before
    error = router.errors["production"]
    assert error.exit_code == 3 and "cannot be read" in error.message
    assert not router.refresh(dest, loader=TEXT_LOADER)
    assert router.errors["production"] is error  # reported once, not once a look
    # Its record gone instead (the directory back): the same.
    write_version(dest, "v1.0.0", "one")
    (dest / ".mvctl" / "records" / "v1.0.0.json").unlink()
    assert not router.refresh(dest, loader=TEXT_LOADER)
    assert router.served() == {"production": "v1.0.0", "canary": "v2.0.0"}
    # Nothing readable at all (state.json gone): what is loaded keeps serving too.
    (dest / "state.json").unlink()
    assert not router.refresh(dest, loader=TEXT_LOADER) and router.ready
    # Once production names a directory that reads, it loads and the error is gone.
    write_state(dest, {"production": ("v4.0.0", None), "canary": ("v2.0.0", 10.0)})
    assert router.refresh(dest, loader=TEXT_LOADER)
    assert router.served() == {"production": "v4.0.0", "canary": "v2.0.0"}
    assert router.errors == {}
    key = KEYS[before.index("production")]
    assert router.predict([[1]], key=key).outputs == ["four"]


ECHO = "tests.serving.test_primary_vanishes:echo_loader"


class _Echo:
    def __init__(self, text: str) -> None:
        self.text = text

    def predict(self, x: Any) -> list[str]:
        return [self.text] * len(x)


def echo_loader(path: Path) -> Any:
    """A model that answers the first bytes of its weights file."""
    target = path if path.is_file() else next(p for p in path.rglob("*") if p.is_file())
    return _Echo(target.read_bytes()[:5].decode())


@pytest.mark.slow
def test_a_missing_primary_never_hands_all_traffic_to_the_canary(reg: Registry, host: Path) -> None:
    """Reproduction, on a DIR the real pull wrote: production's version directory removed,
    then state.json rewritten, made the 10% canary the primary (100% of keys)."""
    base.three(reg, host)  # production v0.1.0, canary v0.2.0 at 10%, shadow v0.3.0
    router = Router("fraud")
    keys = KEYS[:2000]
    try:
        assert router.refresh(host, loader=ECHO)
        before = sum(router.route(k) == "canary" for k in keys) / len(keys)
        assert 0.05 < before < 0.15
        shutil.rmtree(host / "versions" / "v0.1.0")
        state = host / "state.json"
        state.write_text(json.dumps(json.loads(state.read_text()), indent=1))
        router.refresh(host, loader=ECHO)
        served = router.served()
        after = sum(router.route(k) == "canary" for k in keys) / len(keys)
    finally:
        router.close(timeout=0.1)
    assert after == before, f"canary now answers {after:.0%} of keys; serving {served}"
    assert served["production"] == "v0.1.0"
