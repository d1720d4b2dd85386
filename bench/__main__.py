"""`python -m bench [NAME ...]`: every benchmark, or the named ones; figures printed, nothing
asserted.

Names: parsing, pipeline, initial_sync, new_mail_latency, linker_throughput. Each prints one
line per figure, prefixed with its name; sizes come from MAILSYNC_BENCH_* variables (see each
module).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from bench import initial_sync, linker_throughput, new_mail_latency, parsing, pipeline

Figures = dict[str, float]


async def _parsing() -> Figures:
    return parsing.run()


BENCHMARKS: dict[str, Callable[[], Coroutine[Any, Any, Figures]]] = {
    "parsing": _parsing,
    "pipeline": pipeline.run,
    "initial_sync": initial_sync.run,
    "new_mail_latency": new_mail_latency.run,
    "linker_throughput": linker_throughput.run,
}


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    for name in names:
        for key, value in asyncio.run(BENCHMARKS[name]()).items():
            print(f"{name:8s} {key:38s} {value:12.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
