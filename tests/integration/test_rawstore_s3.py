"""The S3 raw store against a real S3 server (ARCHITECTURE §1, R10): moto's S3 server on a
loopback port with SigV4 verification switched on, so every request must carry a signature
the server recomputes and accepts (moto checks it with botocore's signer, an independent
implementation). TLS is exercised against a loopback TLS server with a private CA.

The server runs in this process; the module's fixture stops it, switches authentication back
off and resets moto's state, so nothing outlives these tests."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import json
import secrets
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from mailsync_platform.settings import ServiceSettings
from mailsync_rawstore import (
    RawObjectCorrupt,
    RawObjectMissing,
    RawStoreError,
    S3Credentials,
    S3Location,
    S3RawStore,
    StoredRaw,
)
from mailsync_rawstore import s3 as s3_module

pytestmark = pytest.mark.integration

BUCKET = "mailsync-raw-test"
ABSENT_BUCKET = "mailsync-raw-absent"
REGION = "eu-west-1"
RAW = b"From: a@x.test\r\nSubject: hello\r\n\r\nbody\r\n"
RAW_SHA = hashlib.sha256(RAW).hexdigest()


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    writer: S3Credentials
    reader: S3Credentials

    def store(self, prefix: str, credentials: S3Credentials | None = None) -> S3RawStore:
        location = S3Location(BUCKET, prefix, self.endpoint, REGION)
        return S3RawStore(location, credentials or self.writer)

    def keys(self, prefix: str) -> list[str]:
        bucket = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(BUCKET)
        return sorted(key for key in bucket.keys if key.startswith(f"{prefix}/"))

    def plant(self, key: str, content: bytes) -> None:
        s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(BUCKET, key, content)


def _user(name: str, actions: list[str], buckets: list[str]) -> S3Credentials:
    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    iam.create_user(REGION, name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": actions,
                "Resource": [
                    arn
                    for bucket in buckets
                    for arn in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*")
                ],
            }
        ],
    }
    iam.put_user_policy(name, "raw-store", json.dumps(policy))
    key = iam.create_access_key(name)
    return S3Credentials(key.access_key_id, key.secret_access_key)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with httpx.Client(base_url=endpoint, trust_env=False) as admin:
        try:
            writer = _user(
                "ingest",
                ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                [BUCKET, ABSENT_BUCKET],
            )
            reader = _user("linker", ["s3:GetObject", "s3:ListBucket"], [BUCKET])
            s3_backends[DEFAULT_ACCOUNT_ID]["aws"].create_bucket(BUCKET, REGION)
            # From here on every request must be signed by a known key and allowed by policy.
            admin.post("/moto-api/reset-auth", content=b"0").raise_for_status()
            yield S3Server(endpoint, writer, reader)
        finally:
            admin.post("/moto-api/reset-auth", content=b"inf").raise_for_status()
            admin.post("/moto-api/reset").raise_for_status()
            server.stop()


@pytest.fixture
def prefix() -> str:
    return f"raw-{secrets.token_hex(4)}/mail sync ü"


def _fan_out(prefix: str, sha256: str) -> str:
    return f"{prefix}/{sha256[:2]}/{sha256[2:4]}/{sha256}"


async def test_r10_put_then_get_through_a_signature_checking_s3_server(
    s3_server: S3Server, prefix: str
) -> None:
    async with s3_server.store(prefix) as store:
        assert not await store.exists(RAW_SHA)
        assert await store.put(RAW) == StoredRaw(RAW_SHA, len(RAW))
        assert await store.exists(RAW_SHA)
        assert await store.get(RAW_SHA) == RAW
    assert s3_server.keys(prefix) == [_fan_out(prefix, RAW_SHA)]


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\xff" * 1000, bytes(range(256)), b"x" * (5 * 1024 * 1024)],
    ids=["empty", "binary", "every-byte", "five-megabytes"],
)
async def test_r10_any_content_round_trips_under_its_sha256(
    s3_server: S3Server, prefix: str, content: bytes
) -> None:
    async with s3_server.store(prefix) as store:
        stored = await store.put(content)
        assert stored == StoredRaw(hashlib.sha256(content).hexdigest(), len(content))
        assert await store.get(stored.sha256) == content


async def test_r10_putting_the_same_message_again_uploads_nothing(
    s3_server: S3Server, prefix: str
) -> None:
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    async with s3_server.store(prefix) as store:
        await store.put(RAW)
        first = backend.get_object(BUCKET, _fan_out(prefix, RAW_SHA))
        results = await asyncio.gather(*(store.put(RAW) for _ in range(8)))
    assert set(results) == {StoredRaw(RAW_SHA, len(RAW))}
    # moto replaces the object on every PUT; the same object means no upload happened.
    assert backend.get_object(BUCKET, _fan_out(prefix, RAW_SHA)) is first
    assert s3_server.keys(prefix) == [_fan_out(prefix, RAW_SHA)]


async def test_r10_put_many_uploads_a_batch_and_answers_in_its_order(
    s3_server: S3Server, prefix: str
) -> None:
    contents = [f"message {n}".encode() for n in range(40)]
    async with s3_server.store(prefix) as store:
        stored = await store.put_many(contents)
        assert [s.sha256 for s in stored] == [hashlib.sha256(c).hexdigest() for c in contents]
        assert [await store.get(s.sha256) for s in stored] == contents
    assert len(s3_server.keys(prefix)) == len(contents)


async def test_r10_a_missing_object_raises_raw_object_missing(
    s3_server: S3Server, prefix: str
) -> None:
    async with s3_server.store(prefix) as store:
        with pytest.raises(RawObjectMissing, match=RAW_SHA):
            await store.get(RAW_SHA)
        assert not await store.exists(RAW_SHA)


async def test_r10_an_object_whose_bytes_changed_in_the_bucket_is_reported_corrupt(
    s3_server: S3Server, prefix: str
) -> None:
    s3_server.plant(_fan_out(prefix, RAW_SHA), RAW.replace(b"hello", b"hullo"))
    async with s3_server.store(prefix) as store:
        with pytest.raises(RawObjectCorrupt, match=f"{RAW_SHA}.*corrupt"):
            await store.get(RAW_SHA)


async def test_r10_a_reader_key_reads_what_the_writer_stored_and_cannot_write(
    s3_server: S3Server, prefix: str
) -> None:
    async with s3_server.store(prefix) as writer:
        await writer.put(RAW)
    async with s3_server.store(prefix, s3_server.reader) as reader:
        assert await reader.get(RAW_SHA) == RAW
        with pytest.raises(RawStoreError, match=r"PUT .* answered 403 AccessDenied"):
            await reader.put(b"a message the linker must not store")


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        ("wrong-secret", "SignatureDoesNotMatch"),
        ("unknown-key", "InvalidAccessKeyId"),
    ],
)
async def test_r10_a_bad_key_is_refused_by_the_server_with_its_reason(
    s3_server: S3Server, prefix: str, credentials: str, code: str
) -> None:
    bad = (
        S3Credentials(s3_server.writer.access_key_id, "not-the-secret")
        if credentials == "wrong-secret"
        else S3Credentials("AKIAUNKNOWNKEY000000", s3_server.writer.secret_access_key)
    )
    async with s3_server.store(prefix, bad) as store:
        with pytest.raises(RawStoreError, match=f"GET .* answered 403 {code}"):
            await store.get(RAW_SHA)


async def test_r10_a_bucket_that_does_not_exist_is_a_store_error_not_a_missing_message(
    s3_server: S3Server,
) -> None:
    location = S3Location(ABSENT_BUCKET, "", s3_server.endpoint, REGION)
    async with S3RawStore(location, s3_server.writer) as store:
        with pytest.raises(RawStoreError, match="404 NoSuchBucket"):
            await store.get(RAW_SHA)
        with pytest.raises(RawStoreError, match=r"PUT .* answered 404 NoSuchBucket"):
            await store.put(RAW)


async def test_r10_service_settings_open_the_s3_store_with_the_raw_store_key(
    s3_server: S3Server, prefix: str
) -> None:
    settings = ServiceSettings(
        raw_store_url=f"s3://{BUCKET}/{prefix}?endpoint={s3_server.endpoint}&region={REGION}",
        raw_store_access_key_id=SecretStr(s3_server.writer.access_key_id),
        raw_store_secret_access_key=SecretStr(s3_server.writer.secret_access_key),
    )
    store = settings.raw_store()
    assert isinstance(store, S3RawStore)
    async with store:
        assert await store.put(RAW) == StoredRaw(RAW_SHA, len(RAW))
        assert await store.get(RAW_SHA) == RAW
    assert s3_server.keys(prefix) == [_fan_out(prefix, RAW_SHA)]


@dataclass(frozen=True)
class TlsEndpoint:
    url: str
    ca_file: Path


def _private_ca(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA (written to a PEM file) and a server context whose certificate it signed for
    127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailsync test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = directory / "server.pem"
    chain.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + leaf.public_bytes(serialization.Encoding.PEM)
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain)
    return ca_file, context


@pytest.fixture
async def tls_endpoint(tmp_path: Path) -> AsyncIterator[TlsEndpoint]:
    """A loopback TLS server, certified by a private CA, answering every request with 404."""
    ca_file, context = _private_ca(tmp_path)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield TlsEndpoint(f"https://127.0.0.1:{port}", ca_file)
    finally:
        server.close()
        await server.wait_closed()


async def test_r10_an_endpoint_whose_certificate_is_not_trusted_is_refused(
    tls_endpoint: TlsEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "FIRST_BACKOFF_SECONDS", 0.0)
    async with S3RawStore(S3Location(BUCKET, endpoint=tls_endpoint.url)) as store:
        with pytest.raises(RawStoreError, match="CERTIFICATE_VERIFY_FAILED"):
            await store.exists(RAW_SHA)


async def test_r10_an_endpoint_certified_by_the_ca_file_is_trusted(
    tls_endpoint: TlsEndpoint,
) -> None:
    location = S3Location(BUCKET, endpoint=tls_endpoint.url, ca_file=tls_endpoint.ca_file)
    async with S3RawStore(location) as store:
        assert not await store.exists(RAW_SHA)
