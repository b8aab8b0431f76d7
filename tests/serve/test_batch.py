"""How the scorer gathers a batch: at once when it expects no one, else waiting (at most
``linger``) for the clients it last answered."""

from __future__ import annotations

import asyncio

from crimeclass.serve._batch import Batcher


def _item(name: str, incidents: int = 1) -> tuple:
    return (None, [{"id": name}] * incidents, None)


def _gather(expected: int, now: list[str], later: list[str], linger: float,
            incidents: int = 1) -> list[str]:
    """The names of the batch gathered from ``now`` (queued) while ``later`` arrive 10 ms
    after the gathering starts."""
    async def main() -> list[str]:
        batcher = Batcher(scorers=0, linger=linger)
        for name in now[1:]:
            batcher.queue.put_nowait(_item(name, incidents))
        loop = asyncio.get_running_loop()
        for name in later:
            loop.call_later(0.01, batcher.queue.put_nowait, _item(name, incidents))
        items = await batcher._gather(_item(now[0], incidents), expected)
        return [item[1][0]["id"] for item in items]

    return asyncio.run(main())


def test_a_scorer_that_expects_no_one_starts_with_what_waits():
    assert _gather(0, ["a", "b"], ["c"], linger=5.0) == ["a", "b"]


def test_a_scorer_waits_for_the_clients_it_expects():
    assert _gather(3, ["a"], ["b", "c"], linger=5.0) == ["a", "b", "c"]


def test_a_scorer_waits_no_longer_than_linger():
    assert _gather(5, ["a"], [], linger=0.05) == ["a"]


def test_a_full_batch_does_not_wait():
    assert _gather(3, ["a"], ["b"], linger=5.0, incidents=10_000) == ["a"]
