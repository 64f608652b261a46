"""The login throttle's delays: growing, capped, per client, and forgotten after a long quiet."""

from __future__ import annotations

from callbot.access.throttle import ACCOUNT, CLIENT, PAIR, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_after_the_free_attempts_and_stop_at_the_cap() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock)
    waits = []
    for _ in range(PAIR.free_attempts + 12):
        waits.append(throttle.wait_s("a", "Admin"))
        throttle.failed("a", "admin ")
    free = PAIR.free_attempts
    assert waits[:free] == [0.0] * free and waits[free : free + 4] == [1.0, 2.0, 4.0, 8.0]
    assert throttle.wait_s("a", "admin") == PAIR.max_delay_s, "capped at 15 minutes"
    assert throttle.wait_s("b", "admin") == 0.0, "another address is not slowed down"
    clock.now += 2 * PAIR.max_delay_s + 1
    assert throttle.wait_s("a", "admin") == 0.0, "forgotten after a long quiet"


def test_an_account_attacked_from_many_addresses_waits_a_minute_at_most() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock)
    for n in range(ACCOUNT.free_attempts + 20):
        throttle.failed(f"10.0.{n // 250}.{n % 250}", "admin")
    assert 0 < throttle.wait_s("192.0.2.1", "admin") <= ACCOUNT.max_delay_s


def test_one_address_trying_many_accounts_is_slowed_down_on_all() -> None:
    throttle = LoginThrottle(Clock())
    for n in range(CLIENT.free_attempts):
        throttle.failed("a", f"user{n}")
    assert throttle.wait_s("a", "someone.else") == 1.0
    throttle.succeeded("a", "user0")
    assert throttle.wait_s("a", "someone.else") == 1.0, "a good password for one account clears only that pair"
