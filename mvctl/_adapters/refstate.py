"""A stamp of where git keeps tags, from a few ``stat`` calls: it changes whenever a tag is
created, moved or deleted, so a cache keyed by it can answer without listing 20,000 refs.

git's files backend writes every loose ref by creating ``NAME.lock`` and renaming it over
``NAME`` (rename and unlink change the directory's mtime and ctime), and rewrites
``packed-refs`` the same way (a new inode). Tags live flat in ``refs/tags/`` (mvctl's names
hold no ``/``), and ``refs/replace/`` can change what an object reads as, so the stamp is
those two directories and ``packed-refs``: device, inode, mtime, ctime, size. ctime is set by
the kernel on every change and cannot be set back (``touch -d``, ``rsync -a`` and ``cp -a``
restore mtimes only).

File timestamps come from a clock that ticks every few milliseconds, so two writes within one
tick can leave a directory's times unchanged. As in git's "racy index" rule, a stamp is only
*settled*, fit to be stored, when everything in it is older than :data:`SETTLE_NS`: a write
after the stamp was taken then shows as a newer time. Any other reference storage (reftable)
has no stamp, and a cache keyed by it must read the refs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

SETTLE_NS = 2_000_000_000
_PARTS = ("packed-refs", "refs/tags", "refs/replace")


@dataclass(frozen=True)
class Stamp:
    value: str
    settled: bool  # every time in it is older than SETTLE_NS: a later change must show


def tags_stamp(common_dir: Path) -> Stamp | None:
    """The stamp of the tags in the git directory ``common_dir`` (None: no stamp can be
    trusted here, read the refs)."""
    if (common_dir / "reftable").exists() or not (common_dir / "refs").is_dir():
        return None
    now = time.time_ns()
    parts = []
    newest = 0
    for rel in _PARTS:
        try:
            st = (common_dir / rel).stat()
        except FileNotFoundError:
            parts.append("-")
            continue
        except OSError:
            return None
        parts.append(f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_size}")
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    return Stamp("/".join(parts), newest < now - SETTLE_NS)
