"""Which raw store a `MAILSYNC_RAW_STORE_URL` names, and opening it.

- `file:///abs/dir`, `file://relative/dir` or `file://localhost/abs/dir`: a local directory
  (development and tests);
- `s3://bucket[/prefix][?endpoint=https://host:port&region=name&ca_file=/path/ca.pem]`: a
  bucket of an S3-compatible store (production). Without `endpoint` it is AWS S3 in `region`
  (default us-east-1); `ca_file` trusts a private CA instead of the public ones.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from mailsync_rawstore.s3 import S3Credentials, S3Location, S3RawStore
from mailsync_rawstore.store import LocalRawStore, RawStore


def open_raw_store(url: str, credentials: S3Credentials | None = None) -> RawStore:
    """The store `url` names. `credentials` sign the requests of an s3:// store (none means
    unsigned requests) and are not used by a file:// store.

    RFC 8089 §2: `file://localhost/abs/dir` names the absolute path on this machine."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        host = "" if parsed.netloc.lower() == "localhost" else parsed.netloc
        location = unquote(host + parsed.path)
        if not location:
            raise ValueError(f"raw store URL {url!r} names no directory")
        return LocalRawStore(Path(location))
    if parsed.scheme == "s3":
        return S3RawStore(S3Location.from_url(url), credentials)
    raise ValueError(
        f"unsupported raw store URL scheme {parsed.scheme!r}: use file:///dir or s3://bucket/prefix"
    )
