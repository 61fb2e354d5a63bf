"""The shared cache, which must never be why a request fails.

Everything in the cache can be recomputed from PostgreSQL (write keys, tracking plans, the
suppression version, dashboard figures). So while Redis is down a read is a miss and a write is
skipped, and the callers fall back to the database: ingestion keeps accepting events. Deletes
still raise, since a failed invalidation could leave a stale entry behind once Redis is back.

After a failure the cache is skipped for OUTAGE_SKIP_SECONDS per process, so a request does not
wait for a refused or timed-out connection on every cache call of a dead server.
"""

import logging
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

logger = logging.getLogger(__name__)

OUTAGE_SKIP_SECONDS = 2.0
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class SharedClientRedisCacheClient(RedisCacheClient):
    """Django's client, which builds a `redis.Redis` for every cache call (copying its ~170
    response callbacks: ~0.1 ms of CPU, 4 times per cached recommendations answer); one per
    connection pool serves every thread, as redis-py's clients are thread-safe."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class ResilientRedisCache(RedisCache):
    """Django's Redis cache whose reads miss and writes are skipped while Redis is down."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
        # redis-py's default retries with backoff for seconds; a cache is worth one quick try.
        self._options = {
            "socket_connect_timeout": 0.5,
            "socket_timeout": 1.0,
            "retry": Retry(NoBackoff(), 0),
            **self._options,
        }
        self._down_until = 0.0

    def _reachable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._reachable():
            logger.warning("cache unreachable (%s): reading the database instead", type(exc))
        self._down_until = time.monotonic() + OUTAGE_SKIP_SECONDS

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        if not self._reachable():
            return default
        try:
            return super().get(key, default, version)
        except _UNREACHABLE as exc:
            self._failed(exc)
            return default

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        if not self._reachable():
            return {}
        try:
            return super().get_many(keys, version)
        except _UNREACHABLE as exc:
            self._failed(exc)
            return {}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        if not self._reachable():
            return False
        try:
            return super().has_key(key, version)
        except _UNREACHABLE as exc:
            self._failed(exc)
            return False

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        if not self._reachable():
            return
        try:
            super().set(key, value, timeout, version)
        except _UNREACHABLE as exc:
            self._failed(exc)

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        if not self._reachable():
            return False
        try:
            return super().add(key, value, timeout, version)
        except _UNREACHABLE as exc:
            self._failed(exc)
            return False

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Skipped while Redis is down, answering as for a new key (`delta`): counters (rate
        limits) then count nothing, as the other writes store nothing."""
        if not self._reachable():
            return delta
        try:
            return super().incr(key, delta, version)
        except _UNREACHABLE as exc:
            self._failed(exc)
            return delta

    def set_many(
        self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        if not self._reachable():
            return list(data)
        try:
            return super().set_many(data, timeout, version)
        except _UNREACHABLE as exc:
            self._failed(exc)
            return list(data)  # the keys not set
