"""Run an iterator in a background thread a few items ahead of its consumer (decoding overlaps the work on the
previous frame: PyAV, torch and MediaPipe release the GIL)."""

from __future__ import annotations

import queue
import threading
from typing import Iterator, TypeVar

T = TypeVar("T")
_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterator[T], depth: int = 4) -> Iterator[T]:
    """Yield what `items` yields, produced by a worker thread at most `depth` items ahead.

    An exception in `items` is re-raised in the consumer at the same point of the sequence. If the consumer stops
    early (break, exception, garbage collection), the worker stops too and `items` is closed in its own thread.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def put(item) -> bool:
        while not stopped.is_set():
            try:
                buffer.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    break
            else:
                put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Failure(error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stopped.set()
        worker.join()
