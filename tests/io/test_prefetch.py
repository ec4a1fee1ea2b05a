"""The background-thread prefetcher keeps order, re-raises where the source failed, and stops with its consumer."""

import threading

import pytest

from ned_outlier.io.prefetch import prefetch


def test_order_and_completeness():
    assert list(prefetch(iter(range(1000)), depth=3)) == list(range(1000))


def test_error_is_raised_after_the_items_before_it():
    def source():
        yield 1
        yield 2
        raise ValueError("broken at 3")

    received = []
    with pytest.raises(ValueError, match="broken at 3"):
        for item in prefetch(source()):
            received.append(item)
    assert received == [1, 2]


def test_stopping_early_closes_the_source_and_the_thread():
    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    before = threading.active_count()
    stream = prefetch(endless(), depth=2)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()
    assert closed.is_set()
    assert threading.active_count() == before
