"""Iterators that run ahead on thread pools, and close their source when closed."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

__all__ = ["Primed", "ordered_map", "prefetch"]

T = TypeVar("T")
R = TypeVar("R")


def prefetch(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linreg-read")
    pending: deque[Future[T]] = deque()
    done = object()

    def pull() -> Any:
        return next(items, done)

    try:
        while True:
            while len(pending) < depth:
                pending.append(pool.submit(pull))
            item = pending.popleft().result()
            if item is done:
                return
            yield item
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True)
        close = getattr(items, "close", None)
        if close is not None:
            close()


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Generator[R, None, None]:
    """``map(fn, items)`` on a thread pool, results in order, a few items ahead at most."""
    if workers <= 1:
        yield from map(fn, items)
        return
    depth = 2 * workers
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="linreg-batch")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True)


class Primed(Generic[T]):
    """An iterator whose first item is fetched at once, in a thread, while the caller
    does something else (a batch job loads its model while the first chunk is read);
    the later items come from ``items`` in the caller's thread. An error of the first
    fetch is raised by the first ``next``."""

    _END = object()

    def __init__(self, items: Iterator[T]) -> None:
        self._items = items
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linreg-first")
        self._first: Future[Any] | None = pool.submit(next, items, self._END)
        pool.shutdown(wait=False)  # its thread ends after the one task

    def __iter__(self) -> Primed[T]:
        return self

    def __next__(self) -> T:
        first, self._first = self._first, None
        if first is None:
            return next(self._items)
        item = first.result()
        if item is self._END:
            raise StopIteration
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        """Wait for the first fetch (a generator cannot be closed while it runs), then
        close ``items``."""
        first, self._first = self._first, None
        if first is not None:
            wait([first])  # its error, if any, is not the caller's concern now
        close = getattr(self._items, "close", None)
        if close is not None:
            close()
