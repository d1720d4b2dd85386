"""The raw store in a bucket of an S3-compatible object store (AWS S3, MinIO, Ceph RGW, R2).

Objects are `<prefix>/<aa>/<bb>/<sha256>`, the local store's fan-out under a key prefix.
Invariants:

- an object key is only ever built from a checked address;
- `put` uploads only when the object is absent, and signs the body's sha256 (its address) in
  `x-amz-content-sha256`, so the server itself refuses a body damaged on the way;
- `get` hashes what it downloaded and raises `RawObjectCorrupt` unless it matches;
- TLS is always verified; plain http is accepted only for a loopback endpoint;
- nothing here reads the environment (no `AWS_*` variables, proxies or `~/.aws`): the
  credentials come from the service's settings, and no credentials means unsigned requests;
- every request is idempotent (the store is content-addressed), so a transport error, a 429
  or a 5xx is retried a few times before `RawStoreError` is raised.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from mailsync_rawstore.sigv4 import EMPTY_SHA256, authorization, uri_encode
from mailsync_rawstore.store import (
    RawObjectCorrupt,
    RawObjectMissing,
    RawStoreError,
    StoredRaw,
    check_address,
)

_PUTS_IN_FLIGHT = 16

# Bucket naming rules of S3 (and MinIO, R2): 3-63 of lower-case letters, digits, dots, hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z0-9-]{1,64}")
_URL_OPTIONS = ("endpoint", "region", "ca_file")
DEFAULT_REGION = "us-east-1"

ATTEMPTS = 3
FIRST_BACKOFF_SECONDS = 0.2
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@dataclass(frozen=True, slots=True)
class S3Credentials:
    """A static access key. Its secret never appears in a repr or a log line."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where the objects live. Without an endpoint that is AWS S3 in `region`; with one, any
    S3-compatible server, addressed path-style (`<endpoint>/<bucket>/<key>`)."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str = DEFAULT_REGION
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        if not _BUCKET.fullmatch(self.bucket):
            raise ValueError(f"not an S3 bucket name: {self.bucket!r}")
        if self.prefix and any(part in ("", ".", "..") for part in self.prefix.split("/")):
            raise ValueError(f"raw store key prefix {self.prefix!r} has an empty or dot segment")
        if not _REGION.fullmatch(self.region):
            raise ValueError(f"not an S3 region name: {self.region!r}")
        if self.endpoint is not None:
            _check_endpoint(self.endpoint)

    @classmethod
    def from_url(cls, url: str) -> S3Location:
        """`s3://bucket[/prefix][?endpoint=https://host:port&region=name&ca_file=/path]`."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or parts.fragment:
            raise ValueError(f"not an s3://bucket[/prefix][?options] URL: {url!r}")
        options = parse_qsl(parts.query, keep_blank_values=True)
        names = [name for name, _ in options]
        unknown = sorted(set(names) - set(_URL_OPTIONS))
        if unknown:
            raise ValueError(
                f"raw store URL options {unknown} unknown; known: {list(_URL_OPTIONS)}"
            )
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"raw store URL options {repeated} given more than once")
        given = dict(options)
        ca_file = given.get("ca_file")
        return cls(
            bucket=parts.netloc,
            prefix=unquote(parts.path).strip("/"),
            endpoint=given.get("endpoint"),
            region=given.get("region", DEFAULT_REGION),
            ca_file=Path(ca_file) if ca_file else None,
        )

    def key(self, sha256: str) -> str:
        check_address(sha256)
        fan_out = f"{sha256[:2]}/{sha256[2:4]}/{sha256}"
        return f"{self.prefix}/{fan_out}" if self.prefix else fan_out

    def base_url(self) -> str:
        """Scheme, authority and path up to the object key (no trailing slash)."""
        if self.endpoint is not None:
            return f"{self.endpoint.rstrip('/')}/{self.bucket}"
        aws = f"s3.{self.region}.amazonaws.com"
        # A dotted bucket name does not match the wildcard certificate of virtual hosts.
        if "." in self.bucket:
            return f"https://{aws}/{self.bucket}"
        return f"https://{self.bucket}.{aws}"


def _check_endpoint(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"raw store endpoint {endpoint!r} is not an https:// URL")
    if parts.username is not None or parts.query or parts.fragment:
        raise ValueError(f"raw store endpoint {endpoint!r} must be scheme://host[:port][/path]")
    _ = parts.port  # ValueError when the port is not a number in range
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"raw store endpoint {endpoint!r} is plain http: use https (TLS is always "
            "verified); plain http is accepted only on a loopback address"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _error_code(response: httpx.Response) -> str | None:
    """The `<Code>` of an S3 error document, if the response carries one."""
    match = re.search(r"<Code>([^<]{1,200})</Code>", response.text)
    return match.group(1) if match else None


class S3RawStore:
    """Content-addressed objects in one bucket, under one key prefix."""

    def __init__(
        self,
        location: S3Location,
        credentials: S3Credentials | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.location = location
        self._credentials = credentials
        base = urlsplit(location.base_url())
        self._origin = f"{base.scheme}://{base.netloc}"
        self._base_path = base.path
        self._host = base.netloc
        verify: ssl.SSLContext | bool = True
        if location.ca_file is not None:
            verify = ssl.create_default_context(cafile=location.ca_file)
        # trust_env=False: no proxy variables, no .netrc, no SSL_CERT_FILE behind our back.
        self._client = httpx.AsyncClient(
            verify=verify, trust_env=False, timeout=TIMEOUT, transport=transport
        )

    def __repr__(self) -> str:
        return f"S3RawStore({self.location!r})"

    async def __aenter__(self) -> S3RawStore:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def put(self, content: bytes) -> StoredRaw:
        digest = await asyncio.to_thread(_sha256_hex, content)
        if not await self.exists(digest):
            key = self.location.key(digest)
            response = await self._request("PUT", key, content, digest)
            if response.status_code != 200:
                raise self._failure("PUT", key, response)
        return StoredRaw(digest, len(content))

    async def put_many(self, contents: Sequence[bytes]) -> list[StoredRaw]:
        # A bounded number of PUTs in flight at once: a batch should not open a connection
        # per message.
        stored: list[StoredRaw] = []
        for start in range(0, len(contents), _PUTS_IN_FLIGHT):
            chunk = contents[start : start + _PUTS_IN_FLIGHT]
            stored += await asyncio.gather(*(self.put(content) for content in chunk))
        return stored

    async def get(self, sha256: str) -> bytes:
        key = self.location.key(sha256)
        response = await self._request("GET", key)
        if response.status_code == 404 and _error_code(response) in ("NoSuchKey", None):
            raise RawObjectMissing(sha256)
        if response.status_code != 200:
            raise self._failure("GET", key, response)
        content = response.content
        actual = await asyncio.to_thread(_sha256_hex, content)
        if actual != sha256:
            raise RawObjectCorrupt(
                f"{self._name(key)} returned {len(content)} bytes whose sha256 is {actual}: "
                "the stored copy or the download is corrupt"
            )
        return content

    async def exists(self, sha256: str) -> bool:
        key = self.location.key(sha256)
        response = await self._request("HEAD", key)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._failure("HEAD", key, response)

    def _name(self, key: str) -> str:
        return f"s3://{self.location.bucket}/{key}"

    async def _request(
        self, method: str, key: str, content: bytes = b"", payload_sha256: str = EMPTY_SHA256
    ) -> httpx.Response:
        path = f"{self._base_path}/{uri_encode(key, keep_slash=True)}"
        body = content if method == "PUT" else None
        attempt = 1
        while True:
            try:
                response = await self._client.request(
                    method,
                    self._origin + path,
                    headers=self._headers(method, path, payload_sha256),
                    content=body,
                )
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if attempt == ATTEMPTS:
                    raise RawStoreError(f"{method} {self._name(key)} failed: {exc!r}") from exc
            else:
                if response.status_code not in RETRIED_STATUSES or attempt == ATTEMPTS:
                    return response
            await asyncio.sleep(FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
            attempt += 1

    def _headers(self, method: str, path: str, payload_sha256: str) -> dict[str, str]:
        headers = {
            "host": self._host,
            "x-amz-content-sha256": payload_sha256,
            "x-amz-date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        }
        if self._credentials is not None:
            headers["authorization"] = authorization(
                access_key_id=self._credentials.access_key_id,
                secret_access_key=self._credentials.secret_access_key,
                region=self.location.region,
                service="s3",
                method=method,
                path=path,
                headers=headers,
                payload_sha256=payload_sha256,
            )
        return headers

    def _failure(self, method: str, key: str, response: httpx.Response) -> RawStoreError:
        detail = _error_code(response) or response.reason_phrase
        message = f"{method} {self._name(key)} answered {response.status_code} {detail}"
        if response.status_code == 403:
            # S3 answers 403, not 404, for a missing object when ListBucket is not allowed.
            message += (
                " (check the raw store credentials: they need s3:GetObject, s3:PutObject and "
                "s3:ListBucket on the bucket)"
            )
        return RawStoreError(message)
