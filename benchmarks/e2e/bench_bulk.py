"""Kept for old command lines: the bulk download part of bench_e2e.py.

    PYTHONPATH=src:. python benchmarks/e2e/bench_bulk.py [--size-mib N] [--only quicfast,qh3] [--repeat 1]

Every option is passed on to bench_e2e.py (see there), with ``--workloads download``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_e2e  # noqa: E402

if __name__ == "__main__":
    if "--child" not in sys.argv:
        sys.argv[1:1] = ["--workloads", "download"]
    bench_e2e.main()
