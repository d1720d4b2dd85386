"""The service's Postgres pool and its ordered, idempotent schema migrations.

Each service owns one schema (R: no service reads another's tables). Every pooled connection
has `search_path` set to that schema, so SQL in repositories uses unqualified table names.

Migrations are `NNNN_name.sql` files shipped inside a package. They are applied in order, each
in its own transaction, under an advisory lock so that two replicas starting together do not
race; an applied migration whose file later changed is refused rather than silently skipped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import asyncpg
from asyncpg.pool import PoolConnectionProxy

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class MigrationError(RuntimeError):
    """The database holds a migration history this code does not agree with."""


@dataclass(frozen=True, slots=True)
class Migration:
    source: str
    number: int
    name: str
    sql: str

    @property
    def version(self) -> str:
        return f"{self.source}:{self.number:04d}"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str, source: str) -> list[Migration]:
    """Read the migrations shipped in `package` (a `migrations` package), ordered by number."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        if not (entry.name.endswith(".sql") and entry.name[:1].isdigit()):
            continue  # not meant as a migration (e.g. notes.sql, __init__.py)
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match is None:
            # A file that looks like a migration but is misnamed would never be applied.
            raise MigrationError(f"{package}: {entry.name} is not named NNNN_lower_case.sql")
        found.append(Migration(source, int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.number)
    numbers = [m.number for m in found]
    if len(set(numbers)) != len(numbers):
        raise MigrationError(f"{package}: two migrations share a number: {numbers}")
    return found


def quote_schema(schema: str) -> str:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"not a safe schema name: {schema!r}")
    return f'"{schema}"'


async def migrate(dsn: str, schema: str, migrations: Sequence[Migration]) -> list[str]:
    """Bring `schema` up to date; returns the versions applied by this call."""
    quoted = quote_schema(schema)
    applied_now: list[str] = []
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        lock_key = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:8], "big", signed=True)
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations ("
                " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = await conn.fetch(f"SELECT version, checksum FROM {quoted}.schema_migrations")
            known = {r["version"]: r["checksum"] for r in rows}
            for migration in migrations:
                previous = known.get(migration.version)
                if previous is not None:
                    if previous != migration.checksum:
                        raise MigrationError(
                            f"{schema}: migration {migration.name} changed after it was applied"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL search_path TO {quoted}")
                    await conn.execute(migration.sql)
                    await conn.execute(
                        f"INSERT INTO {quoted}.schema_migrations (version, name, checksum)"
                        " VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                applied_now.append(migration.version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await conn.close()
    return applied_now


async def open_pool(dsn: str, schema: str, size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        server_settings={"search_path": schema},
    )
    if pool is None:  # asyncpg types the result as optional
        raise RuntimeError("asyncpg returned no pool")
    return pool


# What repositories receive: a plain connection or one borrowed from the pool (same API).
DbConnection = asyncpg.Connection | PoolConnectionProxy
