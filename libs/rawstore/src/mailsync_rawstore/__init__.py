"""Content-addressed store for raw MIME (the claim-check of ARCHITECTURE §1).

Raw messages never travel through Kafka; ingest stores them here and events carry the sha256.
The address is the content's sha256, so storing the same message twice is one object, writes
are idempotent, and a reader can verify what it got. Development and tests use a directory
(`file://` URL); production points at an S3-compatible bucket (`s3://` URL).
"""

from mailsync_rawstore.s3 import S3Credentials, S3Location, S3RawStore
from mailsync_rawstore.store import (
    LocalRawStore,
    RawObjectCorrupt,
    RawObjectMissing,
    RawStore,
    RawStoreError,
    StoredRaw,
)
from mailsync_rawstore.url import open_raw_store

__all__ = [
    "LocalRawStore",
    "RawObjectCorrupt",
    "RawObjectMissing",
    "RawStore",
    "RawStoreError",
    "S3Credentials",
    "S3Location",
    "S3RawStore",
    "StoredRaw",
    "open_raw_store",
]
