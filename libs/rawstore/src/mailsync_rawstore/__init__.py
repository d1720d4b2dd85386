"""Content-addressed store for raw MIME (the claim-check of ARCHITECTURE §1).

Raw messages never travel through Kafka; ingest stores them here and events carry the sha256.
The address is the content's sha256, so storing the same message twice is one object, writes
are idempotent, and a reader can verify what it got. Development and tests use a directory
(`file://` URL); production points at an S3-compatible bucket.
"""

from mailsync_rawstore.store import (
    LocalRawStore,
    RawObjectMissing,
    RawStore,
    StoredRaw,
    open_raw_store,
)

__all__ = ["LocalRawStore", "RawObjectMissing", "RawStore", "StoredRaw", "open_raw_store"]
