"""How fast ingest turns raw MIME into an event's fields, and how much memory it takes.

Uses the demo mailbox (many charsets, attachments, broken MIME) parsed repeatedly.
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime

from mailsync_devstack.demo_data import demo_mailbox
from mailsync_ingest.parsing import parse_message

ROUNDS = 50


def run() -> dict[str, float]:
    messages = [m.raw for m in demo_mailbox("dana@demo-sales.test", datetime.now(UTC))]
    total_bytes = sum(len(raw) for raw in messages) * ROUNDS
    started = time.perf_counter()
    for _ in range(ROUNDS):
        for raw in messages:
            parse_message(raw)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    for raw in messages:
        parse_message(raw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    count = len(messages) * ROUNDS
    return {
        "messages": count,
        "messages_per_second": count / elapsed,
        "mib_per_second": total_bytes / elapsed / 2**20,
        "peak_kib_while_parsing_one_message": peak / 1024,
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"parsing  {key:38s} {value:12.1f}")
