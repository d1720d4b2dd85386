"""`python -m bench`: every benchmark, figures printed, nothing asserted."""

from __future__ import annotations

import asyncio

from bench import parsing, pipeline


def main() -> None:
    for key, value in parsing.run().items():
        print(f"parsing  {key:38s} {value:12.1f}")
    for key, value in asyncio.run(pipeline.run()).items():
        print(f"pipeline {key:38s} {value:12.1f}")


if __name__ == "__main__":
    main()
