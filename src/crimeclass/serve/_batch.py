"""Requests that arrive together are scored together: one statement, one model call.

A request for one incident spends most of its time in fixed costs (DuckDB plans the
validation and places statements, scikit-learn and XGBoost set up a call), not
in its row. So the service queues requests, and each of a few scorers (one per core)
takes every request waiting when it is free and scores them in one pass: each request
still on its own (its validation, its own earlier incidents as history, its results),
but with one validation statement, one pass of the features and one model call for all. Under
no load a request is scored at once, alone; under load the batches grow by themselves.

Left alone, concurrent clients split into two halves that take turns: while one half is
scored, the other half's answers go out and its next requests come in, so each batch holds
half the clients and pays the fixed costs twice as often. So a scorer that finds fewer
requests waiting than its last two batches held together (when those held more than one
each: several clients) waits for the rest, at most ``linger`` (10 ms), before it starts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from crimeclass.serve._incidents import validate_requests
from crimeclass.serve._scoring import Serving

__all__ = ["Batcher"]

Item = tuple[Serving, list[dict[str, Any]], "asyncio.Future[list[dict[str, Any]]]"]


def _score(items: list[Item]) -> list[list[dict[str, Any]]]:
    """The results of requests scored together (those served by the same model)."""
    out: list[list[dict[str, Any]]] = [[] for _ in items]
    by_model: dict[int, list[int]] = {}
    for i, (serving, _, _) in enumerate(items):
        by_model.setdefault(id(serving), []).append(i)
    for which in by_model.values():
        serving = items[which[0]][0]
        recs = [items[i][1] for i in which]
        validated = validate_requests(recs)
        results = serving.score_many([(v, len(r)) for v, r in zip(validated, recs,
                                                                   strict=True)])
        for i, r in zip(which, results, strict=True):
            out[i] = r
    return out


class Batcher:
    """The queue of scoring requests and its scorers (start them in the event loop)."""

    def __init__(self, scorers: int, max_incidents: int = 10_000,
                 linger: float = 0.01) -> None:
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self.max_incidents = max_incidents
        self.linger = linger
        self.tasks = [asyncio.create_task(self._run()) for _ in range(scorers)]

    async def score(self, serving: Serving, records: list[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
        """The results of one request, scored with ``serving``'s model."""
        future: asyncio.Future[list[dict[str, Any]]] = \
            asyncio.get_running_loop().create_future()
        await self.queue.put((serving, records, future))
        return await future

    def _take(self, items: list[Item]) -> int:
        """Move waiting requests into ``items`` up to the batch's size; its incidents."""
        n = sum(len(item[1]) for item in items)
        while not self.queue.empty() and n < self.max_incidents:
            item = self.queue.get_nowait()
            items.append(item)
            n += len(item[1])
        return n

    async def _gather(self, first: Item, expected: int) -> list[Item]:
        """The next batch: ``first`` and the requests waiting, and for at most ``linger``
        seconds those still to come while fewer than ``expected``."""
        items = [first]
        n = self._take(items)
        deadline = asyncio.get_running_loop().time() + self.linger
        while (len(items) < expected and n < self.max_incidents
               and asyncio.get_running_loop().time() < deadline):
            await asyncio.sleep(self.linger / 10)
            n = self._take(items)
        return items

    async def _run(self) -> None:
        last = [0, 0]  # requests in the last two batches
        while True:
            expected = sum(last) if min(last) > 1 else 0
            items = await self._gather(await self.queue.get(), expected)
            last = [last[1], len(items)]
            try:
                results = await asyncio.to_thread(_score, items)
            except Exception:  # one request's fault must not fail the others: each alone
                await self._one_by_one(items)
                continue
            for (_, _, future), r in zip(items, results, strict=True):
                if not future.done():
                    future.set_result(r)

    async def _one_by_one(self, items: list[Item]) -> None:
        for item in items:
            future = item[2]
            try:
                r = (await asyncio.to_thread(_score, [item]))[0]
            except Exception as e:
                if not future.done():
                    future.set_exception(e)
                continue
            if not future.done():
                future.set_result(r)

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
