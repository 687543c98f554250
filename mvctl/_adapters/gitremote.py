"""The registry's git remote: pushes whose leases make them a remote compare-and-swap
(and the errors that say whether anything landed), ls-remote and fetch."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from mvctl._adapters.gitrun import GitFailed, run, stderr_line
from mvctl.errors import ConflictError, OperationalError


class Remotes:
    """GitRepo's dealings with remotes (a mixin: ``root`` is the work tree)."""

    root: Path

    def _remote_run(self, *args: str, action: str, timeout: float | None = None) -> str:
        return run(args, self.root, action, timeout=timeout)

    def _remote_stdin(
        self, args: Sequence[str], stdin: str, action: str, timeout: float | None = None
    ) -> str:
        return run(args, self.root, action, stdin=stdin, timeout=timeout)

    def remote_url(self, remote: str) -> str | None:
        """The URL configured for ``remote``, or None when there is no such remote."""
        try:
            out = self._remote_run("config", "--get", f"remote.{remote}.url", action="read remotes")
        except GitFailed:
            return None
        return out.strip() or None

    def check_remote(self, remote: str) -> None:
        """Fail unless ``remote`` answers (one cheap ls-remote of HEAD)."""
        self._remote_run("ls-remote", "-q", "--", remote, "HEAD", action=f"reach remote {remote}")

    def push(
        self,
        remote: str,
        refspecs: Sequence[str],
        *,
        leases: dict[str, str] | None = None,
    ) -> list[str]:
        """One atomic push. ``leases`` maps refs to the value the remote must still have
        ("" for must-not-exist): `--force-with-lease` makes the push a remote compare-and-
        swap. A rejection is a Refused (ConflictError, or the remote's hooks declining):
        nothing landed. Any other failure is a GitFailed: the push may or may not have
        landed (a connection lost after the remote took it).

        SIGINT/SIGTERM while the push runs do not kill it (it runs in a session of its own,
        and is let finish for up to ``PUSH_GRACE`` seconds): killed mid-way, the remote may
        still apply it after we looked. The signal then surfaces as PushInterrupted, which
        says how the push ended."""
        args = ["git", "push", "--porcelain", "--atomic"]
        args += [f"--force-with-lease={ref}:{old}" for ref, old in (leases or {}).items()]
        proc = subprocess.Popen(
            [*args, "--", remote, *refspecs],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        interrupted, deadline = False, 0.0
        while True:
            try:
                wait = max(deadline - time.monotonic(), 0.0) if interrupted else None
                out, err = proc.communicate(timeout=wait)
                break
            except KeyboardInterrupt:
                if not interrupted:
                    interrupted, deadline = True, time.monotonic() + PUSH_GRACE
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                break
        error = None
        if proc.returncode != 0:
            stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
            error = _push_error(remote, stdout, stderr)
        if interrupted:
            raise PushInterrupted(proc.returncode, error)
        if error is not None:
            raise error
        # --porcelain: "=" marks a ref the remote already had at that value (someone else
        # pushed byte-identical tags first: the same move, made once).
        return [
            line.split("\t")[1].split(":", 1)[0]
            for line in out.decode("utf-8", "replace").splitlines()
            if line.startswith("=\t")
        ]

    def remote_objects(
        self, remote: str, refs: Sequence[str], *, timeout: float | None = None
    ) -> dict[str, str]:
        """ref -> object id on ``remote`` for those of ``refs`` it has (one ls-remote)."""
        out = run(
            ["ls-remote", "--", remote, *refs], self.root, f"reach remote {remote}", timeout=timeout
        )
        found: dict[str, str] = {}
        for line in out.splitlines():
            obj, _, name = line.partition("\t")
            found[name] = obj
        return found

    def remote_tags(
        self, remote: str, patterns: Sequence[str], *, timeout: float | None = None
    ) -> dict[str, str]:
        """Tag name (without refs/tags/) -> object id on ``remote``, for the refs matching
        ``patterns``: one ls-remote, no ref written (killed after ``timeout`` seconds)."""
        out = self._remote_run(
            "ls-remote",
            "--refs",
            "--tags",
            "--",
            remote,
            *patterns,
            action=f"reach remote {remote}",
            timeout=timeout,
        )
        found: dict[str, str] = {}
        for line in out.splitlines():
            obj, _, name = line.partition("\t")
            found[name.removeprefix("refs/tags/")] = obj
        return found

    def fetch(self, remote: str, refspecs: Sequence[str], *, timeout: float | None = None) -> None:
        """Fetch ``refspecs`` (read from stdin, so thousands fit) without tags following."""
        self._remote_stdin(
            ["fetch", "--quiet", "--no-tags", "--stdin", "--", remote],
            "\n".join(refspecs) + "\n",
            action=f"fetch from {remote}",
            timeout=timeout,
        )


PUSH_GRACE = 30.0  # seconds a push may finish after SIGINT/SIGTERM before it is killed


class Refused(ConflictError):
    """The remote refused a push as a whole (atomic): nothing of it landed."""


class Declined(OperationalError):
    """The remote's hooks declined a push: nothing of it landed."""


class PushInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived during a push; ``returncode`` and ``error`` say how it ended
    (0 and None: it landed; a Refused/Declined error: nothing landed; anything else:
    unknown, including a push killed by the signal itself)."""

    def __init__(self, returncode: int, error: OperationalError | ConflictError | None) -> None:
        super().__init__("interrupted during a push")
        self.returncode = returncode
        self.error = error


def _push_error(remote: str, stdout: str, stderr: str) -> OperationalError | ConflictError:
    said = stdout + stderr
    if "hook declined" in said:
        return Declined(
            f"{remote} declined the push: {stderr_line(stderr)}",
            hint="the remote's hooks refuse it; ask its owners",
        )
    raced = (
        "rejected]",
        "stale info",
        "atomic push failed",
        "cannot lock ref",
        "failed to update ref",
        "remote failure",
        "already exists",
    )
    if any(text in said for text in raced):
        return Refused(
            f"{remote} refused the push: someone else changed it first",
            hint="nothing was changed; run 'mvctl sync' and try again",
        )
    return GitFailed(f"git failed to push to {remote}: {stderr_line(stderr)}", stderr, stdout)
