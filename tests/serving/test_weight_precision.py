"""A recorded weight is the share a server routes: `canary weight` / `promote --weight`
take six decimals (0.000001 %), so a router's buckets are millionths of a percent, not
the hundredths they were (which routed up to 10,000 times the weight recorded)."""

from __future__ import annotations

from typing import Any

import pytest

from mvctl.serving import Loaded, Router, routing
from tests.channels import test_weights as base
from tests.channels.test_weights import body
from tests.conftest import Registry, mvctl
from tests.serving.test_router import Const

template, reg = base.template, base.reg

KEYS = [f"customer-{i}" for i in range(200_000)]


def canary_keys(weight: float, keys: list[str] = KEYS) -> list[str]:
    """The keys a router sends to a canary of ``weight``, as `mvctl serve` routes."""
    router = Router("fraud")
    try:
        router.set_channels(
            [
                Loaded("production", "v0.1.0", Const(0), None, "v0.1.0"),
                Loaded("canary", "v0.3.0", Const(1), weight, "v0.3.0"),
            ]
        )
        return [k for k in keys if router.route(k) == "canary"]
    finally:
        router.close(timeout=0.1)


def test_routing_has_the_six_decimals_a_weight_has() -> None:
    buckets = {k: routing.bucket("fraud", k) for k in KEYS}
    assert all(round(b * 1_000_000) / 1_000_000 == b for b in buckets.values())
    assert len({int(b * 100) for b in buckets.values()}) == 10_000  # every 0.01% step used
    for weight in (0.000001, 0.001, 0.015, 12.345678, 50):
        routed = canary_keys(weight)
        assert set(routed) == {k for k, b in buckets.items() if b < weight}
        expected = len(KEYS) * weight / 100
        assert abs(len(routed) - expected) <= 4 * expected**0.5 + 1, (weight, len(routed))
    # 200,000 keys at a share of 1e-8: none; in 0.01% buckets it was the ~20 of bucket 0.
    assert canary_keys(0.000001) == []
    # Raising a weight by a millionth only moves keys to the canary.
    lower, higher = set(canary_keys(0.01)), set(canary_keys(0.010001))
    assert lower <= higher <= set(canary_keys(0.02))
    assert len(canary_keys(100, KEYS[:1000])) == 1000


def test_a_weight_of_two_decimals_routes_every_key_as_before() -> None:
    """Replicas upgraded one by one keep a key on its channel: for a weight in 0.01% steps
    the new bucket routes exactly as the old formula did."""
    import hashlib

    for weight in (0.01, 10, 12.34):
        old = {
            k
            for k in KEYS[:50_000]
            if int.from_bytes(hashlib.sha256(f"fraud\0{k}".encode()).digest()[:8], "big")
            % 10_000
            / 100
            < weight
        }
        assert set(canary_keys(weight, KEYS[:50_000])) == old


@pytest.mark.slow
@pytest.mark.parametrize("typed", ["0.000001", "0.001"])
def test_a_recorded_weight_is_the_share_a_server_routes(reg: Registry, typed: str) -> None:
    """Reproduction, with the weight a real promote records."""
    proc = mvctl(reg.root, "promote", "fraud", "v0.3.0", "--to", "canary", "--weight", typed)
    assert proc.returncode == 0, proc.stderr  # the registry takes it, and publishes it
    recorded: Any = body(reg, "fraud@canary")["weight"]
    assert recorded == float(typed)
    routed = 100 * len(canary_keys(recorded)) / len(KEYS)
    # 200,000 keys: 0.000001 % should route ~0.002 of them, 0.001 % ~2.
    assert routed <= recorded * 3 + 0.001, f"recorded {recorded}%, routed {routed:.4f}%"
