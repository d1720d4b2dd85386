"""The claim-check raw store (ARCHITECTURE §1, R10: a message is always stored raw): content
addressed by sha256, idempotent writes, safe addresses, and the URL that opens it."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from mailsync_rawstore import LocalRawStore, RawObjectMissing, StoredRaw, open_raw_store

RAW = b"From: a@x.test\r\nSubject: hello\r\n\r\nbody\r\n"
RAW_SHA = hashlib.sha256(RAW).hexdigest()


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_r10_put_then_get_returns_the_same_bytes(tmp_path: Path) -> None:
    store = LocalRawStore(tmp_path)
    stored = await store.put(RAW)
    assert stored == StoredRaw(RAW_SHA, len(RAW))
    assert await store.get(stored.sha256) == RAW
    assert await store.exists(RAW_SHA)


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\xff" * 1000, bytes(range(256)), b"x" * (5 * 1024 * 1024)],
    ids=["empty", "binary", "every-byte", "five-megabytes"],
)
async def test_r10_any_content_round_trips_under_its_sha256(tmp_path: Path, content: bytes) -> None:
    store = LocalRawStore(tmp_path)
    stored = await store.put(content)
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert stored.size == len(content)
    assert await store.get(stored.sha256) == content


async def test_r10_objects_live_under_a_two_level_fan_out_of_their_address(tmp_path: Path) -> None:
    await LocalRawStore(tmp_path).put(RAW)
    assert stored_files(tmp_path) == [tmp_path / RAW_SHA[:2] / RAW_SHA[2:4] / RAW_SHA]


async def test_r10_putting_the_same_message_twice_keeps_one_object(tmp_path: Path) -> None:
    store = LocalRawStore(tmp_path)
    first = await store.put(RAW)
    second = await store.put(RAW)
    assert first == second
    assert len(stored_files(tmp_path)) == 1


async def test_r10_concurrent_puts_of_one_message_leave_one_object_and_no_temp_files(
    tmp_path: Path,
) -> None:
    store = LocalRawStore(tmp_path)
    results = await asyncio.gather(*(store.put(RAW) for _ in range(8)))
    assert set(results) == {StoredRaw(RAW_SHA, len(RAW))}
    assert [p.name for p in stored_files(tmp_path)] == [RAW_SHA]


async def test_r10_different_messages_are_different_objects(tmp_path: Path) -> None:
    store = LocalRawStore(tmp_path)
    one = await store.put(b"one")
    two = await store.put(b"two")
    assert one.sha256 != two.sha256
    assert await store.get(one.sha256) == b"one"
    assert await store.get(two.sha256) == b"two"


async def test_r10_getting_a_missing_object_raises_raw_object_missing(tmp_path: Path) -> None:
    store = LocalRawStore(tmp_path)
    with pytest.raises(RawObjectMissing, match=RAW_SHA):
        await store.get(RAW_SHA)
    assert not await store.exists(RAW_SHA)


def test_r10_raw_object_missing_is_a_lookup_error() -> None:
    assert issubclass(RawObjectMissing, LookupError)


INVALID_ADDRESSES = [
    "../../etc/passwd",
    "../" + "a" * 61,
    "/" + "a" * 63,
    "a" * 63,
    "a" * 65,
    "A" * 64,
    "g" * 64,
    "a" * 64 + "\n",
    "a" * 62 + "/.",
    "",
]


@pytest.mark.parametrize("address", INVALID_ADDRESSES)
async def test_r10_an_address_that_is_not_a_sha256_is_rejected_before_touching_disk(
    tmp_path: Path, address: str
) -> None:
    store = LocalRawStore(tmp_path / "store")
    with pytest.raises(ValueError, match="not a sha256 address"):
        await store.get(address)
    with pytest.raises(ValueError, match="not a sha256 address"):
        await store.exists(address)
    assert not (tmp_path / "store").exists()


async def test_r10_a_file_url_with_an_absolute_path_opens_that_directory(tmp_path: Path) -> None:
    store = open_raw_store(f"file://{tmp_path}/raw")
    await store.put(RAW)
    assert (tmp_path / "raw" / RAW_SHA[:2] / RAW_SHA[2:4] / RAW_SHA).read_bytes() == RAW


async def test_r10_path_as_uri_opens_the_same_directory_even_with_spaces(tmp_path: Path) -> None:
    directory = tmp_path / "raw store ü"
    store = open_raw_store(directory.as_uri())
    await store.put(RAW)
    assert (directory / RAW_SHA[:2] / RAW_SHA[2:4] / RAW_SHA).exists()


async def test_r10_a_file_url_with_a_relative_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_raw_store("file://.state/rawstore")
    await store.put(RAW)
    assert (tmp_path / ".state" / "rawstore" / RAW_SHA[:2] / RAW_SHA[2:4] / RAW_SHA).exists()


async def test_r10_file_localhost_names_an_absolute_path_rfc_8089(tmp_path: Path) -> None:
    store = open_raw_store(f"file://localhost{tmp_path}/raw")
    await store.put(RAW)
    assert (tmp_path / "raw" / RAW_SHA[:2] / RAW_SHA[2:4] / RAW_SHA).exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://example.test/raw", "unsupported raw store URL scheme 'https'"),
        ("/var/lib/mailsync/raw", "unsupported raw store URL scheme ''"),
        ("", "unsupported raw store URL scheme ''"),
        ("file://", "names no directory"),
    ],
)
def test_r10_an_unsupported_raw_store_url_is_refused_with_a_clear_message(
    url: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        open_raw_store(url)
    if "scheme" in message:
        assert "file://" in str(raised.value)
        assert "s3://" in str(raised.value)


async def test_r10_put_many_stores_each_in_order_once_even_when_a_batch_repeats_one(
    tmp_path: Path,
) -> None:
    store = LocalRawStore(tmp_path)
    contents = [RAW, b"second message", RAW, b""]
    try:
        stored = await store.put_many(contents)
    finally:
        await store.aclose()
    assert stored == [StoredRaw(hashlib.sha256(c).hexdigest(), len(c)) for c in contents]
    assert len(stored_files(tmp_path)) == 3
    for content, address in zip(contents, stored, strict=True):
        assert await store.get(address.sha256) == content
    assert await store.put_many([]) == []
