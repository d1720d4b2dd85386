"""AWS Signature Version 4 for header-signed requests: the one piece of the S3 protocol the
raw store cannot get from httpx.

Follows "Create a signed AWS API request" (AWS IAM user guide) and, for S3's rules, "Signature
Calculations for the Authorization Header" (Amazon S3 API reference). Invariants:

- the caller passes the path exactly as it goes on the wire, already URI-encoded: S3 signs it
  as sent, without the normalization and second encoding other services apply;
- the payload is signed whole (its sha256 in the canonical request), never streamed in chunks;
- tests/unit/test_rawstore_s3_units.py checks this module against AWS's published test vectors.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def uri_encode(text: str, *, keep_slash: bool = False) -> str:
    """Percent-encode every UTF-8 byte except the unreserved `A-Za-z0-9-._~` (RFC 3986 §2.3)."""
    return quote(text, safe="/" if keep_slash else "")


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    payload_sha256: str,
) -> tuple[str, str]:
    """The canonical request and its signed-header list; every header given is signed."""
    canonical_query = "&".join(
        f"{name}={value}"
        for name, value in sorted((uri_encode(n), uri_encode(v)) for n, v in query)
    )
    # Names lower-cased and sorted; values trimmed with inner runs of spaces collapsed.
    canonical_headers = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    names = sorted(canonical_headers)
    signed_headers = ";".join(names)
    lines = [
        method,
        path,
        canonical_query,
        *(f"{name}:{canonical_headers[name]}" for name in names),
        "",
        signed_headers,
        payload_sha256,
    ]
    return "\n".join(lines), signed_headers


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret_access_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def authorization(
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]] = (),
    headers: Mapping[str, str],
    payload_sha256: str,
) -> str:
    """The `Authorization` header value. `headers` must hold `host` and `x-amz-date`
    (`YYYYMMDD'T'HHMMSS'Z'`, UTC) and everything else that is to be signed."""
    amz_date = {name.lower(): value for name, value in headers.items()}["x-amz-date"]
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    request, signed_headers = canonical_request(method, path, query, headers, payload_sha256)
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest()]
    )
    key = signing_key(secret_access_key, amz_date[:8], region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
