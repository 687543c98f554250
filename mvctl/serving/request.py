"""What a host is asked to do (PullRequest) and what a pull did (PullResult)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvctl.serving.layout import Served


@dataclass(frozen=True)
class HookResult:
    argv: tuple[str, ...]
    returncode: int


@dataclass(frozen=True)
class PullResult:
    served: Served
    previous: str | None
    changed: bool
    downloaded: bool
    hook: HookResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.served.to_dict(),
            "previous": self.previous,
            "changed": self.changed,
            "downloaded": self.downloaded,
            "hook": (
                {"argv": list(self.hook.argv), "returncode": self.hook.returncode}
                if self.hook
                else None
            ),
        }


@dataclass(frozen=True)
class PullRequest:
    repo: str
    model: str
    channel: str
    dest: Path
    keep: int = 3
    dvc_remote: str | None = None
    on_change: tuple[str, ...] = ()  # argv; run after a swap
    shell: bool = False  # run on_change[0] through /bin/sh -c
    hook_env: dict[str, str] = field(default_factory=dict)
