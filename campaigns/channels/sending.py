"""Sending a batch's messages with a few threads, for the transports whose sends wait on a
network answer (webhooks, push, email): a receiver's latency, not our CPU, bounds one
connection, so a chunk keeps several busy.

Each delivery is prepared (rendered) in the calling thread, in order, since rendering may read
the database; the sending threads only post, each taking the next person's deliveries when
done with the last (a slow answer holds up one thread, not a share of the chunk; one person's
messages go in order). `pipelined_sends` also overlaps chunks: while one chunk is posted, the
caller records the previous chunk's outcomes and the next chunk is rendered, so the database
round trips and the rendering are not added to the time on the wire.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from django.conf import settings

from campaigns.channels.base import TransportError

if TYPE_CHECKING:
    from campaigns.models import Delivery

Prepared = TypeVar("Prepared")
Outcomes = list[TransportError | None]


class _Posting:
    """One chunk being posted by the sending threads: its outcomes, complete once `wait`
    returns."""

    def __init__(
        self,
        outcomes: Outcomes,
        ready: list[tuple[int, Delivery, Prepared]],
        post: Callable[[Delivery, Prepared], None],
    ) -> None:
        self.outcomes = outcomes
        # One person's messages are posted by one thread in the order of the chunk, so they
        # arrive in the journey's order (a branch's send before the step after it).
        by_person: dict[int, list[tuple[int, Delivery, Prepared]]] = {}
        for item in ready:
            by_person.setdefault(item[1].profile_id, []).append(item)
        pending = iter(by_person.values())
        taking = threading.Lock()

        def send_all() -> None:
            while True:
                with taking:
                    items = next(pending, None)
                if items is None:
                    return
                for index, delivery, prepared in items:
                    try:
                        post(delivery, prepared)
                    except TransportError as error:
                        outcomes[index] = error

        threads = min(settings.CAMPAIGN_SEND_CONCURRENCY, len(by_person))
        self._running: list[Future[None]] = []
        if threads <= 1:
            send_all()
        else:
            pool = _sending_threads()
            self._running = [pool.submit(send_all) for _ in range(threads)]

    def wait(self) -> Outcomes:
        for running in self._running:
            running.result()
        return self.outcomes


def _prepared(
    deliveries: Sequence[Delivery], prepare: Callable[[Delivery], Prepared]
) -> tuple[Outcomes, list[tuple[int, Delivery, Prepared]]]:
    outcomes: Outcomes = [None] * len(deliveries)
    ready: list[tuple[int, Delivery, Prepared]] = []
    for index, delivery in enumerate(deliveries):
        try:
            ready.append((index, delivery, prepare(delivery)))
        except TransportError as error:
            outcomes[index] = error
    return outcomes, ready


def pipelined_sends(
    chunks: Iterable[Sequence[Delivery]],
    prepare: Callable[[Delivery], Prepared],
    post: Callable[[Delivery, Prepared], None],
) -> Generator[Outcomes, None, None]:
    """Each chunk's outcomes, in order (as `concurrent_sends` per chunk), the next chunk
    rendered and posted while the caller handles the outcomes yielded: at most two chunks
    are out of the caller's hands at a time. Closing the iterator early waits for the chunk
    being posted (its outcomes are then lost to the caller: those rows stay "sending")."""
    posting: _Posting | None = None
    try:
        for chunk in chunks:
            outcomes, ready = _prepared(chunk, prepare)  # while the previous chunk posts
            done = posting.wait() if posting is not None else None
            posting = _Posting(outcomes, ready, post)
            if done is not None:
                yield done
        if posting is not None:
            done, posting = posting.wait(), None
            yield done
    finally:
        if posting is not None:
            posting.wait()


def concurrent_sends(
    deliveries: Sequence[Delivery],
    prepare: Callable[[Delivery], Prepared],
    post: Callable[[Delivery, Prepared], None],
) -> Outcomes:
    """Each delivery prepared here, in order, then posted by a few threads at once; the
    outcome of each, in order."""
    outcomes, ready = _prepared(deliveries, prepare)
    return _Posting(outcomes, ready, post).wait()


_threads_lock = threading.Lock()
_threads: tuple[tuple[int, int], ThreadPoolExecutor] | None = None


def _sending_threads() -> ThreadPoolExecutor:
    """The process's CAMPAIGN_SEND_CONCURRENCY sending threads, started once (threads started
    for every chunk cost more CPU than the posts themselves). Keyed by the process, since a
    forked worker does not inherit its parent's threads."""
    global _threads
    key = (os.getpid(), settings.CAMPAIGN_SEND_CONCURRENCY)
    with _threads_lock:
        if _threads is None or _threads[0] != key:
            if _threads is not None and _threads[0][0] == key[0]:
                _threads[1].shutdown(wait=False)
            pool = ThreadPoolExecutor(key[1], thread_name_prefix="campaign-send")
            _threads = (key, pool)
        return _threads[1]
