"""Shared timing and reporting helpers for the benchmarks (never used by tests)."""

import statistics
import time
from typing import Callable


def best_ns_per_op(fn: Callable[[], object], ops_per_call: int, repeat: int = 5, min_time: float = 0.2) -> float:
    """Median over `repeat` runs of the time per operation, in nanoseconds.

    Each run calls `fn` until `min_time` seconds have passed.
    """
    samples = []
    for _ in range(repeat):
        calls = 0
        start = time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        samples.append(elapsed * 1e9 / (calls * ops_per_call))
    return statistics.median(samples)


def report(title: str, rows: list[tuple[str, dict[str, float]]], baseline: str = "quicfast") -> None:
    """Print a table of ns/op per implementation with ratios against `baseline`."""
    names = sorted({name for _, results in rows for name in results}, key=lambda n: (n != baseline, n))
    print(f"\n## {title}\n")
    print("| operation | " + " | ".join(f"{n} ns/op" for n in names) + " | " + " | ".join(
        f"{n}/{baseline}" for n in names if n != baseline) + " |")
    print("|" + "---|" * (1 + len(names) + len(names) - 1))
    for op, results in rows:
        cells = [f"{results[n]:.1f}" if n in results else "-" for n in names]
        base = results.get(baseline)
        ratios = [f"{results[n] / base:.1f}x" if base and n in results else "-" for n in names if n != baseline]
        print(f"| {op} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
