"""The raw store interface, its errors and its local-directory implementation."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Files written (and fsynced) at once by `LocalRawStore.put_many`: an fsync mostly waits on
# the device, and the filesystem journal commits concurrent ones together.
_WRITERS = 8


class RawObjectMissing(LookupError):
    """No object with that address is in the store."""


class RawObjectCorrupt(ValueError):
    """The bytes read back do not hash to the address they were asked for."""


class RawStoreError(OSError):
    """A remote store could not be reached, or refused or failed a request.

    An OSError, so consumers treat it as transient and retry it (a wrong key or a missing
    bucket is fixed by an operator, after which the same record goes through)."""


def check_address(sha256: str) -> str:
    """`sha256` itself if it is a lower-case hex sha256, else ValueError: an address never
    reaches a path or an object key unchecked."""
    # fullmatch: `$` alone would also accept a trailing newline.
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 address: {sha256!r}")
    return sha256


@dataclass(frozen=True, slots=True)
class StoredRaw:
    sha256: str
    size: int


class RawStore(Protocol):
    async def put(self, content: bytes) -> StoredRaw: ...

    async def put_many(self, contents: Sequence[bytes]) -> list[StoredRaw]:
        """`put` each of `contents` (in that order); every object is stored when it returns."""

    async def get(self, sha256: str) -> bytes: ...

    async def exists(self, sha256: str) -> bool: ...

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""


class LocalRawStore:
    """Objects as files `<root>/<aa>/<bb>/<sha256>`, written atomically (temp file + rename).

    Every object is fsynced before its rename, one by one, so an address that exists always
    holds its whole content; `put_many` only writes a batch's files concurrently."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._writers: ThreadPoolExecutor | None = None

    def _path(self, sha256: str) -> Path:
        check_address(sha256)
        return self._root / sha256[:2] / sha256[2:4] / sha256

    async def put(self, content: bytes) -> StoredRaw:
        digest = hashlib.sha256(content).hexdigest()
        path = self._path(digest)
        if not path.exists():
            await asyncio.to_thread(self._write, path, content)
        return StoredRaw(digest, len(content))

    async def put_many(self, contents: Sequence[bytes]) -> list[StoredRaw]:
        if not contents:
            return []
        if self._writers is None:
            self._writers = ThreadPoolExecutor(_WRITERS, thread_name_prefix="rawstore")
        return await asyncio.to_thread(self._put_all, self._writers, contents)

    def _put_all(self, writers: ThreadPoolExecutor, contents: Sequence[bytes]) -> list[StoredRaw]:
        stored = [StoredRaw(hashlib.sha256(c).hexdigest(), len(c)) for c in contents]
        # One write per distinct address, even when a batch holds the same message twice.
        pending = {s.sha256: c for s, c in zip(stored, contents, strict=True)}
        paths = {digest: self._path(digest) for digest in pending}
        writes = [
            writers.submit(self._write, paths[digest], content)
            for digest, content in pending.items()
            if not paths[digest].exists()
        ]
        for write in writes:
            write.result()
        return stored

    @staticmethod
    def _write(path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, sha256: str) -> bytes:
        path = self._path(sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise RawObjectMissing(sha256) from None

    async def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    async def aclose(self) -> None:
        """Stop the writer threads; files are opened and closed per call."""
        if self._writers is not None:
            self._writers.shutdown(wait=True)
            self._writers = None
