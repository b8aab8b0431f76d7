"""Requests that arrive together are scored together: one statement, one model call.

A request for one incident spends most of its time in fixed costs (DuckDB plans the
validation statement and the feature query, scikit-learn and XGBoost set up a call), not
in its row. So the service queues requests, and each of a few scorers (one per core)
takes every request waiting when it is free and scores them in one pass: each request
still on its own (its validation, its own earlier incidents as history, its results),
but with one validation statement, one feature query and one model call for all. Under
no load a request is scored at once, alone; under load the batches grow by themselves.
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

    def __init__(self, scorers: int, max_incidents: int = 10_000) -> None:
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self.max_incidents = max_incidents
        self.tasks = [asyncio.create_task(self._run()) for _ in range(scorers)]

    async def score(self, serving: Serving, records: list[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
        """The results of one request, scored with ``serving``'s model."""
        future: asyncio.Future[list[dict[str, Any]]] = \
            asyncio.get_running_loop().create_future()
        await self.queue.put((serving, records, future))
        return await future

    def _take(self, first: Item) -> list[Item]:
        items, n = [first], len(first[1])
        while not self.queue.empty() and n < self.max_incidents:
            item = self.queue.get_nowait()
            items.append(item)
            n += len(item[1])
        return items

    async def _run(self) -> None:
        while True:
            items = self._take(await self.queue.get())
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
