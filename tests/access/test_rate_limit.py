"""The API keys' rate limit (access.auth.ApiKeyRateThrottle), on the test settings' Redis
cache: held under requests in parallel, sliding across windows, and its Retry-After."""

import math
import threading
from types import SimpleNamespace

import pytest
from django.core.cache import cache

from access.auth import ApiKeyRateThrottle
from access.models import ApiKey

WINDOW_START = 1_800_000_000.0  # a multiple of 60: a minute's window starts here


def _throttle(monkeypatch, rate: str, now: float) -> ApiKeyRateThrottle:
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": rate})
    throttle = ApiKeyRateThrottle()
    throttle.timer = lambda: now
    return throttle


@pytest.fixture
def caller():
    # get_cache_key needs only an ApiKey with an id; the key's own rows are not read.
    key = ApiKey(pk=987_654, name="rate", prefix="x", key_hash="y", scopes=[])
    yield SimpleNamespace(auth=key, user=None)
    cache.delete_many([f"throttle_api_key_key-987654:{w}" for w in range(29_999_990, 30_000_010)])


def test_requests_in_parallel_are_held_to_the_rate(monkeypatch, caller):
    admitted = []

    def send() -> None:
        throttle = _throttle(monkeypatch, "100/min", WINDOW_START + 1)
        admitted.extend(throttle.allow_request(caller, None) for _ in range(50))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert admitted.count(True) == 100
    assert len(admitted) == 400


def test_the_previous_window_counts_for_the_share_of_it_still_in_the_last_minute(
    monkeypatch, caller
):
    first = _throttle(monkeypatch, "10/min", WINDOW_START + 30)
    assert [first.allow_request(caller, None) for _ in range(10)] == [True] * 10
    # A quarter into the next window, three quarters of the previous one still count: 7.5.
    later = _throttle(monkeypatch, "10/min", WINDOW_START + 60 + 15)
    assert [later.allow_request(caller, None) for _ in range(3)] == [True, True, False]
    # The next request fits once the previous window's weight is below 10 - 2 - 1 = 7:
    # 10 * (1 - f) <= 7 at f = 0.3, 18 s into the window: 3 s from now.
    assert later.wait() == pytest.approx(3.0)
    # Refused requests did not count: at 0.3 of the window one more is admitted.
    then = _throttle(monkeypatch, "10/min", WINDOW_START + 60 + 18)
    assert then.allow_request(caller, None) is True
    assert then.allow_request(caller, None) is False


def test_a_key_that_used_its_whole_window_waits_for_the_next_one(monkeypatch, caller):
    throttle = _throttle(monkeypatch, "4/min", WINDOW_START + 45)
    assert [throttle.allow_request(caller, None) for _ in range(5)] == [True] * 4 + [False]
    # 15 s left in this window, then until 4 * (1 - f) <= 3: a quarter of the next (15 s).
    assert throttle.wait() == pytest.approx(30.0)
    assert math.ceil(throttle.wait()) <= 60
    assert (
        _throttle(monkeypatch, "4/min", WINDOW_START + 60 + 14).allow_request(caller, None) is False
    )
    assert _throttle(monkeypatch, "4/min", WINDOW_START + 60 + 15).allow_request(caller, None)


def test_a_key_is_served_while_the_cache_is_down(monkeypatch, caller):
    from django.core.cache import caches

    from cdp.cache import ResilientRedisCache

    assert isinstance(caches["default"], ResilientRedisCache)  # the test settings' Redis
    monkeypatch.setattr(caches["default"], "_down_until", float("inf"))
    throttle = _throttle(monkeypatch, "1/min", WINDOW_START + 1)
    assert [throttle.allow_request(caller, None) for _ in range(3)] == [True] * 3
