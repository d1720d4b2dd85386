"""The S3-compatible raw store without a server (ARCHITECTURE §1, R10): the SigV4 signer
against AWS's published test vectors, the s3:// URL, the object layout, the settings that open
it, and the request/response handling over a scripted transport. The same store against a
real S3 server is in tests/integration/test_rawstore_s3.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from mailsync_platform.settings import ServiceSettings
from mailsync_rawstore import (
    LocalRawStore,
    RawObjectCorrupt,
    RawObjectMissing,
    RawStoreError,
    S3Credentials,
    S3Location,
    S3RawStore,
    StoredRaw,
    open_raw_store,
)
from mailsync_rawstore import s3 as s3_module
from mailsync_rawstore.sigv4 import EMPTY_SHA256, authorization, canonical_request, signing_key

RAW = b"From: a@x.test\r\nSubject: hello\r\n\r\nbody\r\n"
RAW_SHA = hashlib.sha256(RAW).hexdigest()

# The AWS SigV4 test suite (aws-sig-v4-test-suite, as kept in awslabs/aws-c-auth) signs with
# these, at 2015-08-30T12:36:00Z, for region us-east-1 and service "service".
SUITE_KEY = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_HEADERS = {"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"}
SUITE_TOKEN = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

# The worked examples of "Signature Calculations for the Authorization Header" in the Amazon S3
# API reference sign with these, at 2013-05-24T00:00:00Z, in us-east-1.
S3_DOC_KEY = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
S3_DOC_HEADERS = {
    "Host": "examplebucket.s3.amazonaws.com",
    "x-amz-date": "20130524T000000Z",
    "x-amz-content-sha256": EMPTY_SHA256,
}
WELCOME = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()


def _suite(
    method: str, path: str, query: list[tuple[str, str]], extra: dict[str, str], signature: str
) -> tuple[tuple[str, str], str, str, str, list[tuple[str, str]], dict[str, str], str, str]:
    headers = SUITE_HEADERS | extra
    return (SUITE_KEY, "service", method, path, query, headers, EMPTY_SHA256, signature)


def _s3_doc(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    extra: dict[str, str],
    payload: str,
    signature: str,
) -> tuple[tuple[str, str], str, str, str, list[tuple[str, str]], dict[str, str], str, str]:
    headers = S3_DOC_HEADERS | {"x-amz-content-sha256": payload} | extra
    return (S3_DOC_KEY, "s3", method, path, query, headers, payload, signature)


SIGV4_VECTORS = {
    "get-vanilla": _suite(
        "GET", "/", [], {}, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    ),
    "get-vanilla-query-order-key-case": _suite(
        "GET",
        "/",
        [("Param2", "value2"), ("Param1", "value1")],
        {},
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    "get-unreserved": _suite(
        "GET",
        "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        [],
        {},
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    ),
    "get-utf8": _suite(
        "GET",
        "/%E1%88%B4",
        [],
        {},
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    ),
    "get-space-unnormalized": _suite(
        "GET",
        "/example%20space/",
        [],
        {},
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    ),
    "get-vanilla-with-session-token": _suite(
        "GET",
        "/",
        [],
        {"X-Amz-Security-Token": SUITE_TOKEN},
        "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
    ),
    "post-vanilla": _suite(
        "POST", "/", [], {}, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
    ),
    "s3-get-object": _s3_doc(
        "GET",
        "/test.txt",
        [],
        {"Range": "bytes=0-9"},
        EMPTY_SHA256,
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    ),
    "s3-put-object": _s3_doc(
        "PUT",
        "/test%24file.text",
        [],
        {"Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"},
        WELCOME,
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    ),
    "s3-get-bucket-lifecycle": _s3_doc(
        "GET",
        "/",
        [("lifecycle", "")],
        {},
        EMPTY_SHA256,
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    ),
    "s3-list-objects": _s3_doc(
        "GET",
        "/",
        [("max-keys", "2"), ("prefix", "J")],
        {},
        EMPTY_SHA256,
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    ),
}


@pytest.mark.parametrize(
    ("key", "service", "method", "path", "query", "headers", "payload", "signature"),
    list(SIGV4_VECTORS.values()),
    ids=list(SIGV4_VECTORS),
)
def test_sigv4_signs_every_published_aws_test_vector_exactly(
    key: tuple[str, str],
    service: str,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    payload: str,
    signature: str,
) -> None:
    access_key_id, secret = key
    date = {k.lower(): v for k, v in headers.items()}["x-amz-date"][:8]
    signed = authorization(
        access_key_id=access_key_id,
        secret_access_key=secret,
        region="us-east-1",
        service=service,
        method=method,
        path=path,
        query=query,
        headers=headers,
        payload_sha256=payload,
    )
    names = ";".join(sorted(name.lower() for name in headers))
    assert signed == (
        f"AWS4-HMAC-SHA256 Credential={access_key_id}/{date}/us-east-1/{service}/aws4_request, "
        f"SignedHeaders={names}, Signature={signature}"
    )


def test_sigv4_builds_the_documented_canonical_request_for_the_s3_get_object_example() -> None:
    request, signed_headers = canonical_request(
        "GET", "/test.txt", [], S3_DOC_HEADERS | {"Range": "bytes=0-9"}, EMPTY_SHA256
    )
    assert request == (
        "GET\n/test.txt\n\n"
        "host:examplebucket.s3.amazonaws.com\n"
        "range:bytes=0-9\n"
        f"x-amz-content-sha256:{EMPTY_SHA256}\n"
        "x-amz-date:20130524T000000Z\n"
        "\n"
        "host;range;x-amz-content-sha256;x-amz-date\n"
        f"{EMPTY_SHA256}"
    )
    assert signed_headers == "host;range;x-amz-content-sha256;x-amz-date"
    # The hash the documented string to sign carries.
    assert hashlib.sha256(request.encode()).hexdigest() == (
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    )


@pytest.mark.parametrize(
    ("date", "service", "expected"),
    [
        ("20120215", "iam", "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"),
        ("20150830", "iam", "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"),
    ],
)
def test_sigv4_derives_the_documented_signing_key(date: str, service: str, expected: str) -> None:
    assert signing_key(SUITE_KEY[1], date, "us-east-1", service).hex() == expected


def test_sigv4_canonical_headers_are_trimmed_and_their_inner_spaces_collapsed() -> None:
    request, _ = canonical_request(
        "GET", "/", [], {"Host": "h", "X-Amz-Date": "d", "My-Header1": "  a   b   c  "}, "p"
    )
    assert "my-header1:a b c\n" in request


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://mailsync-raw-messages", S3Location("mailsync-raw-messages")),
        ("s3://mailsync-raw-messages/", S3Location("mailsync-raw-messages")),
        (
            "s3://raw-1/mime/v1?endpoint=https://minio.local:9000&region=eu-west-1",
            S3Location("raw-1", "mime/v1", "https://minio.local:9000", "eu-west-1"),
        ),
        (
            "s3://raw-1/mime/?region=auto&endpoint=https://acct.r2.cloudflarestorage.com",
            S3Location("raw-1", "mime", "https://acct.r2.cloudflarestorage.com", "auto"),
        ),
        (
            "s3://raw-1/mail%20sync?endpoint=http://127.0.0.1:9000",
            S3Location("raw-1", "mail sync", "http://127.0.0.1:9000"),
        ),
        (
            "s3://raw-1?endpoint=https://ceph.internal/s3&ca_file=/etc/mailsync/ca.pem",
            S3Location(
                "raw-1", "", "https://ceph.internal/s3", ca_file=Path("/etc/mailsync/ca.pem")
            ),
        ),
    ],
)
def test_r10_an_s3_url_names_bucket_prefix_endpoint_and_region(
    url: str, expected: S3Location
) -> None:
    assert S3Location.from_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://", "not an S3 bucket name"),
        ("s3://Raw_Messages", "not an S3 bucket name"),
        ("s3://key:secret@raw-1", "not an S3 bucket name"),
        ("s3://raw-1/a/../b", "empty or dot segment"),
        ("s3://raw-1/a//b", "empty or dot segment"),
        ("s3://raw-1?region=EU%20West", "not an S3 region name"),
        ("s3://raw-1?endpoint_url=https://minio.local", r"options \['endpoint_url'\] unknown"),
        ("s3://raw-1?region=a&region=b", r"options \['region'\] given more than once"),
        ("s3://raw-1#part", "not an s3://bucket"),
        ("s3://raw-1?endpoint=minio.local:9000", "not an https:// URL"),
        ("s3://raw-1?endpoint=ftp://minio.local", "not an https:// URL"),
        ("s3://raw-1?endpoint=https://k:s@minio.local", "scheme://host"),
        ("s3://raw-1?endpoint=http://minio.local:9000", "plain http"),
        ("s3://raw-1?endpoint=http://10.0.0.7:9000", "plain http"),
        ("s3://raw-1?endpoint=https://minio.local:99999", "[Pp]ort"),
    ],
)
def test_r10_a_malformed_s3_url_is_refused_with_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_raw_store(url)


@pytest.mark.parametrize(
    ("location", "base_url"),
    [
        (S3Location("raw-1", region="eu-west-1"), "https://raw-1.s3.eu-west-1.amazonaws.com"),
        (S3Location("raw.mail", region="eu-west-1"), "https://s3.eu-west-1.amazonaws.com/raw.mail"),
        (
            S3Location("raw-1", endpoint="https://minio.local:9000/"),
            "https://minio.local:9000/raw-1",
        ),
        (S3Location("raw-1", endpoint="https://gw.local/s3"), "https://gw.local/s3/raw-1"),
    ],
    ids=["aws-virtual-host", "aws-dotted-bucket-path-style", "endpoint", "endpoint-with-path"],
)
def test_r10_aws_is_addressed_by_virtual_host_and_other_endpoints_path_style(
    location: S3Location, base_url: str
) -> None:
    assert location.base_url() == base_url


def test_r10_objects_are_keyed_under_the_prefix_by_a_two_level_fan_out() -> None:
    fan_out = f"{RAW_SHA[:2]}/{RAW_SHA[2:4]}/{RAW_SHA}"
    assert S3Location("raw-1", "mime/v1").key(RAW_SHA) == f"mime/v1/{fan_out}"
    assert S3Location("raw-1").key(RAW_SHA) == fan_out


@pytest.mark.parametrize("address", ["../../etc/passwd", "A" * 64, "a" * 64 + "\n", ""])
def test_r10_an_address_that_is_not_a_sha256_never_becomes_an_object_key(address: str) -> None:
    with pytest.raises(ValueError, match="not a sha256 address"):
        S3Location("raw-1").key(address)


async def test_r10_an_s3_url_opens_an_s3_store_whose_repr_hides_the_secret() -> None:
    store = open_raw_store("s3://mailsync-raw-messages", S3Credentials("AKIDEXAMPLE", "s3cr3t"))
    assert isinstance(store, S3RawStore)
    assert store.location == S3Location("mailsync-raw-messages")
    assert "s3cr3t" not in repr(store)
    assert "s3cr3t" not in repr(S3Credentials("AKIDEXAMPLE", "s3cr3t"))
    await store.aclose()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("URL", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY"):
        monkeypatch.delenv(f"MAILSYNC_RAW_STORE_{name}", raising=False)
    return monkeypatch


async def test_settings_open_the_s3_store_with_the_raw_store_key_from_the_environment(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("MAILSYNC_RAW_STORE_URL", "s3://raw-1/mime?region=eu-west-1")
    clean_env.setenv("MAILSYNC_RAW_STORE_ACCESS_KEY_ID", "AKIDEXAMPLE")
    clean_env.setenv("MAILSYNC_RAW_STORE_SECRET_ACCESS_KEY", "s3cr3t")
    settings = ServiceSettings()
    assert "s3cr3t" not in repr(settings)
    store = settings.raw_store()
    assert isinstance(store, S3RawStore)
    assert store.location == S3Location("raw-1", "mime", region="eu-west-1")
    await store.aclose()


def test_settings_open_a_file_url_as_a_local_store(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = ServiceSettings(raw_store_url=tmp_path.as_uri()).raw_store()
    assert isinstance(store, LocalRawStore)


@pytest.mark.parametrize(
    "given",
    [
        {"raw_store_access_key_id": "AKIDEXAMPLE"},
        {"raw_store_secret_access_key": "s3cr3t"},
    ],
    ids=["key-id-alone", "secret-alone"],
)
def test_settings_refuse_half_a_raw_store_key(
    clean_env: pytest.MonkeyPatch, given: dict[str, str]
) -> None:
    with pytest.raises(ValidationError, match="set together or not at all"):
        ServiceSettings.model_validate(given)


def test_settings_refuse_an_empty_raw_store_key(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MAILSYNC_RAW_STORE_ACCESS_KEY_ID", "")
    clean_env.setenv("MAILSYNC_RAW_STORE_SECRET_ACCESS_KEY", "")
    with pytest.raises(ValidationError, match="at least 1"):
        ServiceSettings()


KEY = S3Credentials("AKIDEXAMPLE", "s3cr3t")


def _scripted(seen: list[httpx.Request], answers: list[httpx.Response]) -> httpx.MockTransport:
    """A transport that records each request and gives the next scripted answer."""

    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answers.pop(0)

    return httpx.MockTransport(answer)


def _store(
    seen: list[httpx.Request],
    answers: list[httpx.Response],
    credentials: S3Credentials | None = KEY,
) -> S3RawStore:
    location = S3Location("raw-1", "mime", "https://minio.local:9000", "eu-west-1")
    return S3RawStore(location, credentials, transport=_scripted(seen, answers))


def _error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, text=f"<Error><Code>{code}</Code><Message>m</Message></Error>")


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "FIRST_BACKOFF_SECONDS", 0.0)


OBJECT_PATH = f"/raw-1/mime/{RAW_SHA[:2]}/{RAW_SHA[2:4]}/{RAW_SHA}"


async def test_r10_put_asks_whether_the_object_exists_then_uploads_it_signed_with_its_address() -> (
    None
):
    seen: list[httpx.Request] = []
    async with _store(seen, [httpx.Response(404), httpx.Response(200)]) as store:
        assert await store.put(RAW) == StoredRaw(RAW_SHA, len(RAW))
    head, put = seen
    assert (head.method, head.url.path, put.method, put.url.path) == (
        "HEAD",
        OBJECT_PATH,
        "PUT",
        OBJECT_PATH,
    )
    assert put.content == RAW
    assert put.headers["x-amz-content-sha256"] == RAW_SHA
    assert put.headers["host"] == "minio.local:9000"
    assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date," in put.headers["authorization"]


async def test_r10_put_of_an_object_already_stored_uploads_nothing() -> None:
    seen: list[httpx.Request] = []
    async with _store(seen, [httpx.Response(200)]) as store:
        assert await store.put(RAW) == StoredRaw(RAW_SHA, len(RAW))
    assert [request.method for request in seen] == ["HEAD"]


async def test_r10_without_credentials_requests_go_unsigned() -> None:
    seen: list[httpx.Request] = []
    async with _store(seen, [httpx.Response(404)], credentials=None) as store:
        assert not await store.exists(RAW_SHA)
    assert "authorization" not in seen[0].headers


async def test_r10_get_returns_the_bytes_whose_sha256_is_the_address() -> None:
    seen: list[httpx.Request] = []
    async with _store(seen, [httpx.Response(200, content=RAW)]) as store:
        assert await store.get(RAW_SHA) == RAW
    assert (seen[0].method, seen[0].url.path) == ("GET", OBJECT_PATH)


async def test_r10_get_of_bytes_that_do_not_hash_to_the_address_raises_raw_object_corrupt() -> None:
    async with _store([], [httpx.Response(200, content=RAW + b"tampered")]) as store:
        with pytest.raises(RawObjectCorrupt, match=f"s3://raw-1/mime/.*{RAW_SHA}.*corrupt"):
            await store.get(RAW_SHA)


async def test_r10_get_of_a_missing_key_raises_raw_object_missing() -> None:
    async with _store([], [_error(404, "NoSuchKey")]) as store:
        with pytest.raises(RawObjectMissing, match=RAW_SHA):
            await store.get(RAW_SHA)


async def test_r10_a_missing_bucket_is_a_store_error_not_a_missing_message() -> None:
    async with _store([], [_error(404, "NoSuchBucket")]) as store:
        with pytest.raises(RawStoreError, match="404 NoSuchBucket"):
            await store.get(RAW_SHA)


@pytest.mark.usefixtures("no_backoff")
async def test_r10_a_throttled_or_failing_store_is_retried_until_it_answers() -> None:
    seen: list[httpx.Request] = []
    answers = [_error(503, "SlowDown"), httpx.Response(500), httpx.Response(200, content=RAW)]
    async with _store(seen, answers) as store:
        assert await store.get(RAW_SHA) == RAW
    assert len(seen) == 3


@pytest.mark.usefixtures("no_backoff")
async def test_r10_a_store_failing_every_attempt_raises_a_transient_store_error() -> None:
    answers = [_error(503, "SlowDown")] * s3_module.ATTEMPTS
    async with _store([], answers) as store:
        with pytest.raises(RawStoreError, match=r"HEAD s3://raw-1/mime/.* answered 503 SlowDown"):
            await store.put(RAW)
    assert issubclass(RawStoreError, OSError), "consumers retry OSError as transient"


@pytest.mark.usefixtures("no_backoff")
async def test_r10_an_unreachable_store_raises_a_store_error_after_its_attempts() -> None:
    attempts = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("connection refused", request=request)

    location = S3Location("raw-1", endpoint="https://minio.local:9000")
    async with S3RawStore(location, transport=httpx.MockTransport(refuse)) as store:
        with pytest.raises(RawStoreError, match="connection refused"):
            await store.exists(RAW_SHA)
    assert attempts == s3_module.ATTEMPTS


@pytest.mark.parametrize("code", ["AccessDenied", "SignatureDoesNotMatch"])
async def test_r10_a_refused_request_names_the_reason_and_the_permissions_needed(
    code: str,
) -> None:
    async with _store([], [_error(403, code)]) as store:
        with pytest.raises(RawStoreError, match=f"403 {code}.*s3:ListBucket"):
            await store.get(RAW_SHA)
