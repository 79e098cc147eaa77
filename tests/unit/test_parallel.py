import multiprocessing
import os
import time

import pytest

from molvae.parallel import default_workers, ordered_map


def square_with_pid(x):
    return x * x, os.getpid()


def test_results_keep_input_order_across_processes():
    items = list(range(40))
    results = list(ordered_map(square_with_pid, iter(items), workers=2, max_pending=3))
    assert [item for item, _ in results] == items
    assert [value for _, (value, _) in results] == [x * x for x in items]
    assert all(pid != os.getpid() for _, (_, pid) in results)


def die(x):
    os._exit(3)


def test_a_dead_worker_is_an_error_that_says_what_to_do():
    with pytest.raises(RuntimeError, match=r'if __name__ == "__main__":.*or pass workers=1'):
        list(ordered_map(die, range(4), workers=2))


def nap(x):
    time.sleep(0 if x == 0 else 60)
    return x


def test_stopping_early_ends_the_workers_mid_task():
    earlier = set(multiprocessing.active_children())  # other tests' processes may still be exiting
    results = ordered_map(nap, range(6), workers=2, max_pending=2)
    assert next(results)[0] == 0
    ours = set(multiprocessing.active_children()) - earlier
    assert ours  # the pool's workers (one or two: a second starts only while the first is busy)
    closing = time.perf_counter()
    results.close()  # the others sleep for a minute: they are ended, not waited for
    closed = time.perf_counter()
    assert closed - closing < 30
    # The executor's own thread may reap a terminated worker first, and until it has, that
    # worker still reads as alive here: allow a moment, far short of the minute-long naps.
    while any(p.is_alive() for p in ours) and time.perf_counter() - closed < 10:
        time.sleep(0.05)
    assert not any(p.is_alive() for p in ours)


def test_one_worker_runs_in_process():
    results = list(ordered_map(square_with_pid, range(5), workers=1))
    assert [r[1][0] for r in results] == [0, 1, 4, 9, 16]
    assert {pid for _, (_, pid) in results} == {os.getpid()}


def test_bounded_pending_does_not_drain_the_input():
    pulled = []

    def stream():
        for i in range(100):
            pulled.append(i)
            yield i

    results = ordered_map(square_with_pid, stream(), workers=2, max_pending=4)
    next(results)
    assert len(pulled) <= 5
    results.close()
    assert default_workers() >= 1


def fail_on_three(x):
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def test_a_worker_error_reaches_the_consumer_and_stops_the_pool():
    seen = []
    with pytest.raises(ValueError, match="bad item 3"):
        for item, _ in ordered_map(fail_on_three, range(50), workers=2, max_pending=4):
            seen.append(item)
    assert seen == [0, 1, 2]
