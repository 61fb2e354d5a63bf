"""Batching inside one web process, with threads and timers (no SQL here: `storage` writes).

- `GroupCommit`: the single events of concurrent requests share one write and one commit.
- `events_enqueue`: committed event ids are gathered per process and published to
  `events_process_task` in chunks, not one task per request.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

from celery import current_app
from django.conf import settings

from access.queueing import task_named

# The pipeline's task lives at the top of the layers (cdp.tasks), above profiles: ingestion
# queues it by name (access.queueing) instead of importing it.
EVENTS_PROCESS_TASK = "cdp.tasks.events_process_task"

logger = logging.getLogger(__name__)

ENQUEUE_DELAY_SECONDS = 0.2
# After a failed publish, events are left to the sweep this long before publishing is tried again.
BROKER_DOWN_SKIP_SECONDS = 2.0

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Waiting(Generic[Item, Result]):
    """One caller's item, waiting in a group until it is written (or its group fails)."""

    __slots__ = ("done", "error", "item", "ready", "result")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.ready = threading.Event()
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Group commit: while one thread of this process writes (its statement and the commit,
    which waits for the disk), the items of the other threads wait, and the next writer writes
    all of them at once. Every caller still returns only after its own item is written.

    Contract of `write(items)`: store the items, in one statement and commit when it can, and
    return one outcome per item, in order: its result, or the exception its own caller is to
    raise (so one bad item need not fail the others). An exception `write` raises fails every
    caller of that group.
    """

    def __init__(self, write: Callable[[list[Item]], Sequence[Result | BaseException]]) -> None:
        self._write_items = write
        self._lock = threading.Lock()
        self._waiting: list[_Waiting[Item, Result]] = []
        self._writing = False

    def submit(self, item: Item) -> Result:
        """Write one item, with whatever other threads submit meanwhile; its result."""
        mine: _Waiting[Item, Result] = _Waiting(item)
        with self._lock:
            self._waiting.append(mine)
            lead = not self._writing
            self._writing = True
        if not lead:
            mine.ready.wait()
            # Handed the next group (see _write) when not written by the previous one.
            lead = not mine.done
        if lead:
            self._write()
        if mine.error is not None:
            raise mine.error
        return cast(Result, mine.result)  # set whenever done without error

    def _write(self) -> None:
        with self._lock:
            group, self._waiting = self._waiting, []
        try:
            outcomes = self._write_items([waiting.item for waiting in group])
            for waiting, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    waiting.error = outcome
                else:
                    waiting.result = outcome
                waiting.done = True
        except BaseException as exc:
            for waiting in group:
                if not waiting.done:
                    waiting.error, waiting.done = exc, True
            raise
        finally:
            with self._lock:
                following = self._waiting[0] if self._waiting else None
                self._writing = following is not None
            for waiting in group:
                waiting.ready.set()
            if following is not None:
                following.ready.set()  # it writes the group gathered meanwhile


def _events_publish(event_ids: list[int]) -> None:
    events_process_task = task_named(EVENTS_PROCESS_TASK)
    chunk = settings.INGEST_PROCESS_CHUNK
    for start in range(0, len(event_ids), chunk):
        ids = event_ids[start : start + chunk]
        # argsrepr: Celery would otherwise build a repr of every id for its message headers.
        events_process_task.apply_async((ids,), argsrepr=f"([{len(ids)} event ids],)")


class _ProcessingQueue:
    """Hands committed event ids to `events_process_task`, in tasks of INGEST_PROCESS_CHUNK.

    Ids are gathered per process: every full chunk is published at once, the rest after at most
    ENQUEUE_DELAY_SECONDS. So a thousand single events a second, or a hundred batches of 100,
    cost a few tasks, not a thousand or a hundred (publishing a task costs about as much CPU as
    storing a hundred events, and processing is cheaper per event in bigger chunks). Ids still
    gathered when a process dies are picked up by the beat sweep (`events_process_pending_task`);
    the events themselves are already committed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: list[int] = []
        self._timer: threading.Timer | None = None
        self._pid = os.getpid()
        self._broker_down_until = 0.0

    def add(self, event_ids: list[int]) -> None:
        if current_app.conf.task_always_eager:
            _events_publish(event_ids)
            return
        chunk = settings.INGEST_PROCESS_CHUNK
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's timer does not exist here
                self._ids, self._timer, self._pid = [], None, os.getpid()
            self._ids.extend(event_ids)
            full = len(self._ids) - len(self._ids) % chunk
            ready, self._ids = self._ids[:full], self._ids[full:]
            if self._ids and self._timer is None:
                self._timer = threading.Timer(ENQUEUE_DELAY_SECONDS, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if ready:
            self._publish_or_leave(ready)

    def flush(self) -> None:
        with self._lock:
            ready, self._ids, self._timer = self._ids, [], None
        if ready:
            self._publish_or_leave(ready)

    def _publish_or_leave(self, event_ids: list[int]) -> None:
        """Publish, or leave the (committed) events to the beat sweep while the broker is
        down: a request must neither fail nor wait on every publish for a dead broker."""
        if time.monotonic() < self._broker_down_until:
            return
        try:
            _events_publish(event_ids)
        except Exception:
            self._broker_down_until = time.monotonic() + BROKER_DOWN_SKIP_SECONDS
            logger.exception("could not queue %s events for processing", len(event_ids))


_processing_queue = _ProcessingQueue()
atexit.register(_processing_queue.flush)


def events_enqueue(event_ids: list[int]) -> None:
    """Queue committed events for processing (see _ProcessingQueue)."""
    _processing_queue.add(event_ids)
