"""Bounded waiting for socket tests: poll a condition instead of sleeping a guessed time."""

import asyncio


async def eventually(predicate, seconds: float = 10.0) -> bool:
    """Wait (bounded) until predicate() holds; returns its last value."""
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()
