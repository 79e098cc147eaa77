"""Order-preserving parallel map over a stream, with bounded memory.

``multiprocessing.Pool.imap`` drains its input iterator as fast as it can, which would
read a multi-million-row file into the task queue; here at most ``max_pending`` items
are in flight, so memory stays flat however long the stream is.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def ordered_map(func: Callable[[T], R], items: Iterable[T], workers: int | None = None,
                max_pending: int | None = None) -> Iterator[tuple[T, R]]:
    """Yield ``(item, func(item))`` in input order, computing on ``workers`` processes.

    ``workers <= 1`` runs in this process (same results, easier debugging). Worker
    processes are spawned, not forked, so they start clean of any threads (torch,
    progress bars) the parent holds; ``func`` must be importable at module level. If the
    consumer stops early (an error, closing the generator, or ``SystemExit`` from the CLI's
    SIGTERM handler), pending work is cancelled and the workers are ended at once;
    ``multiprocessing.Pool.terminate`` can deadlock there, so the executor from
    ``concurrent.futures`` is used instead.
    """
    workers = default_workers() if workers is None else workers
    if workers <= 1:
        for item in items:
            yield item, func(item)
        return
    max_pending = max_pending or 2 * workers
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    pending: deque[tuple[T, Future]] = deque()
    finished = False
    try:
        for item in items:
            pending.append((item, pool.submit(func, item)))
            if len(pending) >= max_pending:
                done_item, future = pending.popleft()
                yield done_item, _result(future)
        while pending:
            done_item, future = pending.popleft()
            yield done_item, _result(future)
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _abandon(pool, pending)


def _abandon(pool: ProcessPoolExecutor, pending: deque[tuple[T, Future]]) -> None:
    """Stop now: nothing more is wanted, so the workers are ended mid-task rather than left to
    finish what they hold (minutes of work for large chunks)."""
    for _, future in pending:
        future.cancel()
    # The executor's own list of its processes; Python 3.14 adds terminate_workers() for this.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)


def _result(future: Future[R]) -> R:
    try:
        return future.result()
    except BrokenProcessPool as error:
        # The usual cause is a script without a main guard: each spawned worker re-imports it
        # and starts the work again, which multiprocessing refuses.
        raise RuntimeError(
            "a worker process died before finishing its task. Workers are spawned processes that "
            "re-import the main script: call this under `if __name__ == \"__main__\":`, or pass "
            "workers=1 to run in this process. (A worker killed for memory ends the same way.)") from error
