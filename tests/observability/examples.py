"""The example folder (examples/observability/) as the tests run it: copied to a temp dir
with its ports, intervals and ``for:`` durations replaced, each replacement checked, so a
test runs the very files a newcomer reads (not a second copy of the rules)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "observability"
TOKENS = ("serve", "metrics", "webhook")


@dataclass(frozen=True)
class Ports:
    serve: int
    pull: int
    webhook: int
    alertmanager: int


def _replace(text: str, old: str, new: str, count: int) -> str:
    found = text.count(old)
    assert found == count, f"the example has {found} x {old!r}, the test expects {count}"
    return text.replace(old, new)


def laid_out(where: Path, ports: Ports, tokens: dict[str, str]) -> Path:
    """The example folder under ``where`` with 1 s scrapes and evaluations, short ``for:``
    (3 s for the error rate, 10 s for the lag), a 1 s group_wait, and ``ports``."""
    folder = where / "observability"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("tokens", "*.md"))
    (folder / "tokens").mkdir()
    for name in TOKENS:
        (folder / "tokens" / f"{name}.token").write_text(tokens[name] + "\n")
    prom = (folder / "prometheus.yml").read_text()
    prom = _replace(prom, "_interval: 5s", "_interval: 1s", 2)
    prom = _replace(prom, "127.0.0.1:9093", f"127.0.0.1:{ports.alertmanager}", 1)
    prom = _replace(prom, "127.0.0.1:8080", f"127.0.0.1:{ports.serve}", 1)
    prom = _replace(prom, "127.0.0.1:9466", f"127.0.0.1:{ports.pull}", 1)
    (folder / "prometheus.yml").write_text(prom)
    rules = (folder / "rules.yml").read_text()
    rules = _replace(rules, "for: 30s", "for: 3s", 1)
    rules = _replace(rules, "for: 2m", "for: 10s", 1)
    (folder / "rules.yml").write_text(rules)
    am = (folder / "alertmanager.yml").read_text()
    am = _replace(am, "127.0.0.1:9465", f"127.0.0.1:{ports.webhook}", 1)
    am = _replace(am, "group_wait: 10s", "group_wait: 1s", 1)
    am = _replace(am, "group_interval: 1m", "group_interval: 2s", 1)
    (folder / "alertmanager.yml").write_text(am)
    return folder
