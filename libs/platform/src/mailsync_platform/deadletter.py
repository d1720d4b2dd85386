"""Publishing a consumed record that cannot be processed to `mail.deadletter.v1`.

The dead letter keeps the original bytes (for replay), the reason, and where it came from.
It is published directly rather than through the outbox: the consumer commits the original
offset only after this publish is acknowledged, so the record is never lost in between.
"""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from mailsync_contracts import DeadLetterRecorded
from mailsync_contracts.topics import DEADLETTER
from mailsync_platform.consumer import ConsumedRecord


class DeadLetterPublisher:
    def __init__(self, service: str, broker: KafkaBroker) -> None:
        self._service = service
        self._broker = broker

    async def record(self, origin: ConsumedRecord, kind: str, reason: str) -> None:
        letter = DeadLetterRecorded.capture(
            topic=origin.topic,
            partition=origin.partition,
            offset=origin.offset,
            key=origin.key,
            value=origin.value,
            error_kind=kind,
            error_message=reason,
            service=self._service,
            headers=origin.headers,
        )
        await self._broker.publish(
            letter.to_bytes(),
            DEADLETTER,
            key=origin.key,
            headers={"content-type": "application/json"},
        )
