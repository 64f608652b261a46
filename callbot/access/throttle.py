"""Growing delays after failed logins, instead of a lockout that anyone could trigger.

Three counters, each with a few free attempts and then a delay that doubles with every further failure:

- a client address and a user name together (someone guessing one account): after 5 failures, 1 s, 2 s, 4 s…
  up to 15 minutes;
- a client address, whatever the user names (someone trying many accounts): after 20 failures, up to 15 minutes;
- a user name, whatever the clients (guessing spread over many addresses): after 50 failures, at most 60 s, so
  that nobody can keep a colleague out for longer than a minute from addresses of their own.

The counters are per ``callbot serve`` process and forget a key once its delay has long passed; a restart
clears them all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    free_attempts: int
    max_delay_s: float


PAIR = Rule(5, 900.0)
CLIENT = Rule(20, 900.0)
ACCOUNT = Rule(50, 60.0)
MAX_KEYS = 100_000
"""Keys kept at most (the oldest go first): an address flood cannot grow the table without bound."""


@dataclass(slots=True)
class _Failures:
    count: int
    last_at: float


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: OrderedDict[tuple[str, ...], _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, client: str, username: str) -> float:
        """Seconds before an attempt for ``username`` from ``client`` is accepted (0: now)."""
        now = self._now()
        with self._lock:
            return max(self._wait(key, rule, now) for key, rule in _keys(client, username))

    def failed(self, client: str, username: str) -> None:
        now = self._now()
        with self._lock:
            for key, _ in _keys(client, username):
                entry = self._failures.pop(key, None) or _Failures(0, now)
                entry.count += 1
                entry.last_at = now
                self._failures[key] = entry
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, client: str, username: str) -> None:
        """The right password: this client's counter for the account starts again (the others stay)."""
        with self._lock:
            self._failures.pop(("pair", client, _name(username)), None)

    def _wait(self, key: tuple[str, ...], rule: Rule, now: float) -> float:
        entry = self._failures.get(key)
        if entry is None or entry.count < rule.free_attempts:
            return 0.0
        delay = min(2.0 ** (entry.count - rule.free_attempts), rule.max_delay_s)
        remaining = entry.last_at + delay - now
        if remaining <= -rule.max_delay_s:  # long quiet: forgotten
            del self._failures[key]
            return 0.0
        return max(remaining, 0.0)

    def _now(self) -> float:
        return self._clock()


def _name(username: str) -> str:
    return username.strip().lower()[:64]


def _keys(client: str, username: str) -> list[tuple[tuple[str, ...], Rule]]:
    name = _name(username)
    return [(("pair", client, name), PAIR), (("client", client), CLIENT), (("account", name), ACCOUNT)]
