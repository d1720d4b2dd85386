"""The platform library's pure parts: ordered, checked migrations (every service's schema), the
consumer's retry backoff (at-least-once delivery, ARCHITECTURE §1), and JSON logs that never
carry credentials or message bodies (ARCHITECTURE §5).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailsync_platform.consumer import DEFAULT_RETRY, RetryPolicy
from mailsync_platform.database import Migration, MigrationError, load_migrations, quote_schema
from mailsync_platform.logs import JsonFormatter

MigrationPackage = Callable[[dict[str, str]], str]


@pytest.fixture
def migration_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MigrationPackage]:
    """Makes an importable package holding the given files; returns its dotted name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(files: dict[str, str]) -> str:
        name = f"migrations_{secrets.token_hex(6)}"
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text("")
        for filename, sql in files.items():
            (package / filename).write_text(sql, encoding="utf-8")
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)


def test_migrations_are_ordered_by_number_not_by_file_name(
    migration_package: MigrationPackage,
) -> None:
    package = migration_package(
        {
            "0010_tenth.sql": "SELECT 10;",
            "0002_second.sql": "SELECT 2;",
            "0001_first.sql": "SELECT 1;",
            "0003_third.sql": "SELECT 3;",
        }
    )
    migrations = load_migrations(package, "ingest")
    assert [m.number for m in migrations] == [1, 2, 3, 10]
    assert [m.version for m in migrations] == [
        "ingest:0001",
        "ingest:0002",
        "ingest:0003",
        "ingest:0010",
    ]
    assert migrations[0] == Migration("ingest", 1, "0001_first.sql", "SELECT 1;")


def test_migrations_read_their_sql_as_utf8(migration_package: MigrationPackage) -> None:
    package = migration_package({"0001_comment.sql": "-- Präzision 精密\nSELECT 1;"})
    (migration,) = load_migrations(package, "linker")
    assert migration.sql == "-- Präzision 精密\nSELECT 1;"


def test_two_migrations_with_one_number_are_refused(migration_package: MigrationPackage) -> None:
    package = migration_package({"0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 2;"})
    with pytest.raises(MigrationError, match="share a number"):
        load_migrations(package, "ingest")


@pytest.mark.parametrize(
    "filename",
    ["README.md", "0002_a.py", "0002_a.sql.bak", "0002_a.txt", "notes.sql"],
)
def test_files_that_are_not_migrations_are_ignored(
    migration_package: MigrationPackage, filename: str
) -> None:
    package = migration_package({"0001_real.sql": "SELECT 1;", filename: "SELECT 'no';"})
    assert [m.name for m in load_migrations(package, "ingest")] == ["0001_real.sql"]


@pytest.mark.parametrize("filename", ["0002_Add_Index.sql", "0002-add-index.sql", "2_add.sql"])
def test_a_misnamed_migration_is_refused_not_silently_skipped(
    migration_package: MigrationPackage, filename: str
) -> None:
    package = migration_package({"0001_real.sql": "SELECT 1;", filename: "SELECT 2;"})
    with pytest.raises(MigrationError):
        load_migrations(package, "ingest")


def test_an_empty_migrations_package_has_no_migrations(
    migration_package: MigrationPackage,
) -> None:
    assert load_migrations(migration_package({}), "ingest") == []


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("mailsync_ingest.migrations", "ingest"),
        ("mailsync_linker.migrations", "linker"),
        ("mailsync_platform.migrations", "platform"),
    ],
)
def test_the_shipped_migrations_load_in_strictly_increasing_order(
    package: str, source: str
) -> None:
    migrations = load_migrations(package, source)
    numbers = [m.number for m in migrations]
    assert numbers == sorted(set(numbers))
    assert all(m.version.startswith(f"{source}:") for m in migrations)


@pytest.mark.parametrize(
    ("migration", "version"),
    [
        (Migration("ingest", 1, "0001_a.sql", ""), "ingest:0001"),
        (Migration("linker", 42, "0042_b.sql", ""), "linker:0042"),
        (Migration("platform", 9999, "9999_c.sql", ""), "platform:9999"),
    ],
)
def test_a_migration_version_is_its_source_and_zero_padded_number(
    migration: Migration, version: str
) -> None:
    assert migration.version == version


def test_a_migration_checksum_is_the_sha256_of_its_sql_and_changes_with_it() -> None:
    sql = "CREATE TABLE t (id int);"
    migration = Migration("ingest", 1, "0001_t.sql", sql)
    assert migration.checksum == hashlib.sha256(sql.encode()).hexdigest()
    edited = Migration("ingest", 1, "0001_t.sql", sql + " ")
    assert edited.checksum != migration.checksum
    renamed = Migration("linker", 7, "0007_other.sql", sql)
    assert renamed.checksum == migration.checksum


@pytest.mark.parametrize(
    ("schema", "quoted"),
    [("ingest", '"ingest"'), ("linker_2", '"linker_2"'), ("_private", '"_private"')],
)
def test_quote_schema_quotes_a_safe_schema_name(schema: str, quoted: str) -> None:
    assert quote_schema(schema) == quoted


@pytest.mark.parametrize(
    "schema",
    [
        "",
        "Ingest",
        "1ingest",
        "in-gest",
        "in gest",
        'in"gest',
        "ingest; DROP SCHEMA public",
        "ingest.other",
        "ingést",
        "ingest\x00",
    ],
)
def test_quote_schema_rejects_an_unsafe_schema_name(schema: str) -> None:
    with pytest.raises(ValueError, match="not a safe schema name"):
        quote_schema(schema)


def test_quote_schema_rejects_a_trailing_newline() -> None:
    with pytest.raises(ValueError, match="not a safe schema name"):
        quote_schema("ingest\n")


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [(0, 0.2), (1, 0.4), (2, 0.8), (3, 1.6), (4, 3.2), (5, 6.4), (6, 10.0), (7, 10.0), (50, 10.0)],
)
def test_retry_backoff_doubles_from_the_first_delay_up_to_the_cap(
    attempt: int, seconds: float
) -> None:
    assert DEFAULT_RETRY.backoff(attempt) == pytest.approx(seconds)


def test_retry_backoff_never_decreases() -> None:
    delays = [DEFAULT_RETRY.backoff(attempt) for attempt in range(40)]
    assert delays == sorted(delays)
    assert max(delays) == DEFAULT_RETRY.max_backoff_seconds


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            RetryPolicy(first_backoff_seconds=1.0, max_backoff_seconds=5.0),
            [1.0, 2.0, 4.0, 5.0, 5.0],
        ),
        (RetryPolicy(first_backoff_seconds=0.0, max_backoff_seconds=5.0), [0.0] * 5),
        (RetryPolicy(first_backoff_seconds=3.0, max_backoff_seconds=1.0), [1.0] * 5),
    ],
    ids=["custom", "no-delay", "cap-below-first"],
)
def test_retry_backoff_follows_the_policy(policy: RetryPolicy, expected: list[float]) -> None:
    assert [policy.backoff(attempt) for attempt in range(5)] == expected


def test_retry_backoff_stays_at_the_cap_during_a_long_outage() -> None:
    assert DEFAULT_RETRY.backoff(5000) == DEFAULT_RETRY.max_backoff_seconds


def format_record(extra: dict[str, Any], message: str = "synced", **record: Any) -> str:
    formatter = JsonFormatter("ingest")
    logger = logging.getLogger("mailsync.test")
    log_record = logger.makeRecord(
        logger.name,
        record.pop("level", logging.INFO),
        __file__,
        1,
        message,
        (),
        record.pop("exc_info", None),
        extra=extra,
    )
    return formatter.format(log_record)


def strict_json(line: str) -> dict[str, Any]:
    """Parse as RFC 8259 JSON: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    value = json.loads(line, parse_constant=refuse)
    assert isinstance(value, dict)
    return value


SECRET_KEYS = [
    "password",
    "secret",
    "token",
    "body",
    "credentials",
    "raw",
    "html",
    "text",
    "authorization",
    "Password",
    "TOKEN",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_json_logs_never_write_keys_that_hold_secrets_or_message_content(key: str) -> None:
    line = format_record({key: "hunter2", "account_id": "acc-1"})
    entry = strict_json(line)
    assert key not in entry
    assert "hunter2" not in line
    assert entry["account_id"] == "acc-1"


@pytest.mark.parametrize("key", ["smtp_password", "access_token", "client_secret", "raw_body"])
def test_json_logs_never_write_compound_secret_keys(key: str) -> None:
    assert "hunter2" not in format_record({key: "hunter2"})


def test_json_logs_carry_service_level_logger_message_and_ids() -> None:
    entry = strict_json(
        format_record({"account_id": "acc-1", "offset": 42, "ok": True}, level=logging.WARNING)
    )
    assert entry["service"] == "ingest"
    assert entry["level"] == "warning"
    assert entry["logger"] == "mailsync.test"
    assert entry["message"] == "synced"
    assert entry["account_id"] == "acc-1"
    assert entry["offset"] == 42
    assert entry["ok"] is True
    assert "T" in entry["time"]
    assert entry["time"].endswith("+00:00")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "line one\nline two\r\nline three"),
        ({"detail": "multi\nline\u2028value"}, "m"),
        ({"folder": "Входящие 收件箱"}, "non-ascii"),
        ({"payload": {"nested": ["x", 1]}, "when": object()}, "non-json values"),
        ({}, 'quote " backslash \\ tab \t'),
    ],
    ids=["multi-line-message", "multi-line-extra", "non-ascii", "repr-values", "escapes"],
)
def test_json_logs_write_exactly_one_json_object_per_line(
    extra: dict[str, Any], message: str
) -> None:
    line = format_record(extra, message)
    assert "\n" not in line
    assert "\r" not in line
    assert strict_json(line)["message"] == message


def test_json_logs_put_a_traceback_on_the_same_line() -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        line = format_record({}, "failed", exc_info=sys.exc_info())
    assert "\n" not in line
    entry = strict_json(line)
    assert "RuntimeError: boom" in entry["exception"]


def test_json_logs_through_a_handler_are_one_object_per_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("linker"))
    logger = logging.getLogger(f"mailsync.test.{secrets.token_hex(4)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.warning("first\nmessage", extra={"thread_id": "t-1", "body": "secret body"})
    logger.warning("second", extra={"password": "hunter2"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert [strict_json(line)["message"] for line in lines] == ["first\nmessage", "second"]
    assert "secret body" not in stream.getvalue()
    assert "hunter2" not in stream.getvalue()


def test_json_logs_stay_json_for_non_finite_numbers() -> None:
    strict_json(format_record({"ratio": float("nan")}))


def test_json_logs_keep_their_own_fields_when_an_extra_shares_the_name() -> None:
    entry = strict_json(format_record({"level": "forged", "service": "forged"}))
    assert entry["level"] == "info"
    assert entry["service"] == "ingest"
