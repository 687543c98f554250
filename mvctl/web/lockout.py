"""Failed logins per client address, locked out for a while after a few: the dashboard's
defence against guessing its token (through the login form or the bearer header alike).

Each check and count is one synchronous call, never split by an ``await``: guesses in flight
together are all counted, and each is judged after its body arrived, so sending them in
parallel buys no extra ones. The table is bounded: beyond ``capacity`` addresses, the one
quiet longest is forgotten first (without trusted proxy headers an address is a real peer,
so filling the table takes that many hosts)."""

from __future__ import annotations

from collections import OrderedDict

AFTER = 5  # failed logins from one address ...
SECONDS = 60.0  # ... lock it out this long
CAPACITY = 4096  # addresses remembered at most


class Lockout:
    """The failures table of one app (never module state)."""

    def __init__(
        self, after: int = AFTER, seconds: float = SECONDS, capacity: int = CAPACITY
    ) -> None:
        self.after = after
        self.seconds = seconds
        self.capacity = capacity
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # n, locked until

    def __len__(self) -> int:
        return len(self._failures)

    def knows(self, client: str) -> bool:
        return client in self._failures

    def locked(self, client: str, now: float) -> bool:
        _, until = self._failures.get(client, (0, 0.0))
        return until > now

    def fail(self, client: str, now: float) -> bool:
        """Count one failure of ``client``; whether it is locked out now."""
        # Once locked, every further failure locks again (the count never resets but by
        # a successful login).
        count = self._failures.pop(client, (0, 0.0))[0] + 1
        locked = count >= self.after
        self._failures[client] = (count, now + self.seconds if locked else 0.0)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)
        return locked

    def clear(self, client: str) -> None:
        self._failures.pop(client, None)
