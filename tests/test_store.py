"""SQLite store: schema, suppressions, keys, durability across restarts and concurrent writers."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path

import pytest

import checker.store as store_module
from checker.keys import KeyType, ParsedKey
from checker.schema import MIGRATIONS
from checker.store import ACCOUNT, Store, StoredKey

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
USER = "user-1"
OTHER = "user-2"


def _key(fingerprint: str = "ab" * 20, *, expires_at: datetime | None = None) -> ParsedKey:
    """A key as `parse_key` would return it; the store never parses keys itself."""
    return ParsedKey(
        type=KeyType.PGP,
        fingerprint=fingerprint,
        created_at=NOW - timedelta(days=10),
        expires_at=expires_at,
        addresses=("a@x.com",),
    )


def _pragma(path: Path, name: str) -> object:
    """Read a PRAGMA through a connection of our own, as another process would."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


class _Clock:
    """Stands in for `datetime` inside checker.store so that `now` is ours to set."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self, tz: tzinfo | None = None) -> datetime:
        return self.moment


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database file in a folder that does not exist yet."""
    return tmp_path / "data" / "mailpreflight.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    """An open store on a fresh file, closed after the test."""
    opened = Store(db_path)
    await opened.open()
    yield opened
    await opened.close()


async def _open(path: Path) -> Store:
    opened = Store(path)
    await opened.open()
    return opened


class TestSchema:
    """Opening migrates the file to the newest schema in WAL mode."""

    async def test_created(self, store: Store, db_path: Path) -> None:
        """A new file gets user_version == len(MIGRATIONS), WAL mode, and answers pings."""
        assert _pragma(db_path, "user_version") == len(MIGRATIONS)
        assert _pragma(db_path, "journal_mode") == "wal"
        assert await store.ping() is True

    async def test_tables(self, store: Store, db_path: Path) -> None:
        """Both tables exist after the migrations."""
        with closing(sqlite3.connect(db_path)) as db:
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"suppressions", "keys"} <= names


class TestStoreLifecycle:
    """The store is usable only between `open` and `close`."""

    @pytest.mark.parametrize("opened_then_closed", [False, True], ids=["never-opened", "closed"])
    async def test_unopened_raises(self, db_path: Path, opened_then_closed: bool) -> None:
        """Every call on a store that is not open raises RuntimeError."""
        store = Store(db_path)
        if opened_then_closed:
            await store.open()
        await store.close()

        with pytest.raises(RuntimeError, match="not open"):
            await store.ping()
        with pytest.raises(RuntimeError, match="not open"):
            await store.add_suppressions(ACCOUNT, [("address", "a@x.com", "bounce", None)])
        with pytest.raises(RuntimeError, match="not open"):
            await store.list_suppressions(ACCOUNT, 0, 10, None, None)
        with pytest.raises(RuntimeError, match="not open"):
            await store.put_key(USER, "a@x.com", _key(), "text")
        with pytest.raises(RuntimeError, match="not open"):
            await store.keys(USER)

    async def test_restart_keeps_everything(self, db_path: Path) -> None:
        """Closing and opening a new Store on the same file finds every entry and key."""
        first = await _open(db_path)
        await first.add_suppressions(ACCOUNT, [("domain", "x.com", "complaint", "n")])
        await first.add_suppressions(USER, [("address", "a@y.com", "bounce", None)])
        await first.put_key(USER, "a@x.com", _key(expires_at=NOW), "armored")
        await first.close()

        second = await _open(db_path)
        try:
            account, account_total = await second.list_suppressions(ACCOUNT, 0, 10, None, None)
            user, user_total = await second.list_suppressions(USER, 0, 10, None, None)
            keys, key_total = await second.keys(USER)
        finally:
            await second.close()

        assert (account_total, user_total, key_total) == (1, 1, 1)
        assert [(s.kind, s.value, s.reason, s.note) for s in account] == [
            ("domain", "x.com", "complaint", "n")
        ]
        assert [(s.kind, s.value) for s in user] == [("address", "a@y.com")]
        assert [(k.fingerprint, k.expires_at, k.key_text) for k in keys] == [
            ("ab" * 20, "2026-06-01T12:00:00Z", "armored")
        ]
        assert _pragma(db_path, "user_version") == len(MIGRATIONS)


class TestSuppressions:
    """Adding, listing, deleting and looking up suppressions per owner."""

    async def test_add_returns_entries(self, store: Store) -> None:
        """`add_suppressions` returns the stored entries with their scope."""
        added = await store.add_suppressions(
            USER, [("address", "a@x.com", "bounce", "hard"), ("domain", "y.com", "manual", None)]
        )

        assert [s.to_json() for s in added] == [
            {
                "address": "a@x.com",
                "reason": "bounce",
                "note": "hard",
                "created_at": added[0].created_at,
                "scope": "user",
            },
            {
                "domain": "y.com",
                "reason": "manual",
                "note": None,
                "created_at": added[1].created_at,
                "scope": "user",
            },
        ]

    async def test_idempotent(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        """Adding an entry twice keeps one row, updates reason and note, keeps created_at."""
        clock = _Clock(NOW)
        monkeypatch.setattr(store_module, "datetime", clock)
        await store.add_suppressions(ACCOUNT, [("address", "a@x.com", "bounce", "first")])
        clock.moment = NOW + timedelta(hours=1)

        again = await store.add_suppressions(ACCOUNT, [("address", "a@x.com", "manual", None)])
        rows, total = await store.list_suppressions(ACCOUNT, 0, 10, None, None)

        assert total == 1
        assert rows == again
        assert [(s.reason, s.note, s.created_at) for s in rows] == [
            ("manual", None, "2026-06-01T12:00:00Z")
        ]

    async def test_paging_and_total(self, store: Store) -> None:
        """Pages follow insertion order and the total counts all of the owner's entries."""
        values = [f"a{i}@x.com" for i in range(5)]
        await store.add_suppressions(USER, [("address", v, "bounce", None) for v in values])
        await store.add_suppressions(OTHER, [("address", "z@x.com", "bounce", None)])

        pages = [await store.list_suppressions(USER, first, 2, None, None) for first in (0, 2, 4)]

        assert [[s.value for s in page] for page, _ in pages] == [
            values[:2],
            values[2:4],
            values[4:],
        ]
        assert {total for _, total in pages} == {5}
        assert await store.list_suppressions(USER, 5, 2, None, None) == ([], 5)

    @pytest.mark.parametrize(
        ("kind", "value", "expected"),
        [
            pytest.param("address", "a@x.com", [("address", "a@x.com")], id="address"),
            pytest.param("domain", "x.com", [("domain", "x.com")], id="domain"),
            pytest.param("domain", "a@x.com", [], id="kind-must-match"),
            pytest.param("address", "b@x.com", [], id="no-match"),
        ],
    )
    async def test_filter(
        self, store: Store, kind: str, value: str, expected: list[tuple[str, str]]
    ) -> None:
        """Filtering by kind and value returns that entry alone, and the total follows."""
        await store.add_suppressions(
            USER,
            [
                ("address", "a@x.com", "bounce", None),
                ("domain", "x.com", "manual", None),
                ("address", "c@x.com", "bounce", None),
            ],
        )

        rows, total = await store.list_suppressions(USER, 0, 10, kind, value)

        assert [(s.kind, s.value) for s in rows] == expected
        assert total == len(expected)

    async def test_delete(self, store: Store) -> None:
        """Deleting returns True once, then False; the entry is gone and others stay."""
        await store.add_suppressions(
            USER, [("address", "a@x.com", "bounce", None), ("domain", "x.com", "manual", None)]
        )

        assert await store.delete_suppression(USER, "address", "a@x.com") is True
        assert await store.delete_suppression(USER, "address", "a@x.com") is False
        rows, total = await store.list_suppressions(USER, 0, 10, None, None)
        assert [(s.kind, s.value) for s in rows] == [("domain", "x.com")]
        assert total == 1

    async def test_delete_other_owner(self, store: Store) -> None:
        """One owner cannot delete another owner's entry."""
        await store.add_suppressions(USER, [("address", "a@x.com", "bounce", None)])

        assert await store.delete_suppression(OTHER, "address", "a@x.com") is False
        assert await store.delete_suppression(ACCOUNT, "address", "a@x.com") is False
        assert (await store.list_suppressions(USER, 0, 10, None, None))[1] == 1

    @pytest.mark.parametrize("account_first", [True, False], ids=["account-first", "user-first"])
    async def test_suppressed_names_account(self, store: Store, account_first: bool) -> None:
        """When the account and a user suppress the same entry, the account is named."""
        writes = [
            (ACCOUNT, [("address", "a@x.com", "bounce", None), ("domain", "y.com", "m", None)]),
            (USER, [("address", "a@x.com", "manual", None), ("domain", "z.com", "m", None)]),
        ]
        for owner, entries in writes if account_first else reversed(writes):
            await store.add_suppressions(owner, entries)

        found = await store.suppressed(
            [ACCOUNT, USER], ["a@x.com", "b@x.com"], ["y.com", "z.com", "w.com"]
        )

        assert found == {
            ("address", "a@x.com"): ACCOUNT,
            ("domain", "y.com"): ACCOUNT,
            ("domain", "z.com"): USER,
        }

    async def test_users_isolated(self, store: Store) -> None:
        """A user's entries are invisible to another user, who still sees the account's."""
        await store.add_suppressions(USER, [("address", "a@x.com", "bounce", None)])
        await store.add_suppressions(ACCOUNT, [("domain", "y.com", "manual", None)])

        found = await store.suppressed([ACCOUNT, OTHER], ["a@x.com"], ["y.com"])

        assert found == {("domain", "y.com"): ACCOUNT}
        assert await store.list_suppressions(OTHER, 0, 10, None, None) == ([], 0)
        assert await store.suppressed([USER], ["a@x.com"], []) == {("address", "a@x.com"): USER}

    async def test_suppressed_kind_matters(self, store: Store) -> None:
        """A suppressed domain does not match an address of the same text, nor the reverse."""
        await store.add_suppressions(ACCOUNT, [("domain", "x.com", "manual", None)])
        await store.add_suppressions(ACCOUNT, [("address", "a@y.com", "bounce", None)])

        assert await store.suppressed([ACCOUNT], ["x.com"], ["a@y.com"]) == {}

    async def test_suppressed_nothing_asked(self, store: Store) -> None:
        """No owners or no entries to look up give an empty answer."""
        await store.add_suppressions(ACCOUNT, [("domain", "x.com", "manual", None)])

        assert await store.suppressed([], [], ["x.com"]) == {}
        assert await store.suppressed([ACCOUNT], [], []) == {}

    async def test_suppressed_many(self, store: Store) -> None:
        """Lookups larger than one query chunk find every entry."""
        values = [f"a{i}@x.com" for i in range(450)]
        await store.add_suppressions(USER, [("address", v, "bounce", None) for v in values])

        found = await store.suppressed([ACCOUNT, USER], [*values, "none@x.com"], ["x.com"])

        assert found == {("address", v): USER for v in values}


class TestKeys:
    """Storing, listing, replacing and deleting recipient keys per owner."""

    async def test_round_trip(self, store: Store) -> None:
        """A stored key is listed with its metadata and text, for its owner only."""
        stored = await store.put_key(USER, "a@x.com", _key(expires_at=NOW), "armored text")

        assert (stored.owner, stored.address, stored.type, stored.fingerprint) == (
            USER,
            "a@x.com",
            "pgp",
            "ab" * 20,
        )
        assert (stored.created_at, stored.expires_at) == (
            "2026-05-22T12:00:00Z",
            "2026-06-01T12:00:00Z",
        )
        assert await store.keys(USER) == ([stored], 1)
        assert await store.keys(USER, ["a@x.com", "b@x.com"]) == ([stored], 1)
        assert await store.keys(OTHER) == ([], 0)
        assert await store.keys(ACCOUNT, ["a@x.com"]) == ([], 0)

    async def test_replace_same_type(self, store: Store) -> None:
        """Putting a key of the same owner, address and type replaces the old one."""
        await store.put_key(USER, "a@x.com", _key("11" * 20), "old")
        newer = await store.put_key(USER, "a@x.com", _key("22" * 20), "new")

        keys, total = await store.keys(USER)

        assert total == 1
        assert keys == [newer]
        assert (keys[0].fingerprint, keys[0].key_text) == ("22" * 20, "new")

    async def test_types_and_owners_coexist(self, store: Store) -> None:
        """A PGP key and an S/MIME certificate, or two owners' keys, are kept side by side."""
        smime = ParsedKey(KeyType.SMIME, "cd" * 32, None, None, ("a@x.com",))
        await store.put_key(USER, "a@x.com", _key(), "pgp")
        await store.put_key(USER, "a@x.com", smime, "pem")
        await store.put_key(OTHER, "a@x.com", _key(), "other")

        keys, total = await store.keys(USER)

        assert total == 2
        assert [(k.type, k.key_text) for k in keys] == [("pgp", "pgp"), ("smime", "pem")]

    async def test_paging(self, store: Store) -> None:
        """Pages of all keys are ordered by address; the total counts them all."""
        for name in ("c", "a", "b"):
            await store.put_key(USER, f"{name}@x.com", _key(), name)

        first, total = await store.keys(USER, first_row=0, matches=2)
        rest, _ = await store.keys(USER, first_row=2, matches=2)

        assert total == 3
        assert [k.address for k in first + rest] == ["a@x.com", "b@x.com", "c@x.com"]

    async def test_delete(self, store: Store) -> None:
        """Deleting one type removes only it; deleting all removes the rest; counts are exact."""
        smime = ParsedKey(KeyType.SMIME, "cd" * 32, None, None, ("a@x.com",))
        await store.put_key(USER, "a@x.com", _key(), "pgp")
        await store.put_key(USER, "a@x.com", smime, "pem")
        await store.put_key(USER, "b@x.com", _key(), "other")

        assert await store.delete_keys(USER, "a@x.com", "pgp") == 1
        assert [(k.address, k.type) for k in (await store.keys(USER))[0]] == [
            ("a@x.com", "smime"),
            ("b@x.com", "pgp"),
        ]
        assert await store.delete_keys(OTHER, "a@x.com", None) == 0
        assert await store.delete_keys(USER, "a@x.com", None) == 1
        assert await store.delete_keys(USER, "a@x.com", None) == 0
        assert [k.address for k in (await store.keys(USER))[0]] == ["b@x.com"]


class TestStoredKeyValidAt:
    """`StoredKey.valid_at` compares the expiry with a moment in any time zone."""

    @pytest.mark.parametrize(
        ("expires_at", "now", "valid"),
        [
            pytest.param(None, NOW + timedelta(days=10_000), True, id="never-expires"),
            pytest.param("2026-06-01T12:00:00Z", NOW - timedelta(seconds=1), True, id="before"),
            pytest.param("2026-06-01T12:00:00Z", NOW + timedelta(seconds=1), False, id="after"),
            pytest.param("2026-06-01T12:00:00Z", NOW + timedelta(days=400), False, id="long-after"),
            pytest.param(
                "2026-06-01T12:00:00Z",
                datetime(2026, 6, 1, 13, 30, tzinfo=timezone(timedelta(hours=2))),
                True,
                id="before-in-other-zone",
            ),
            pytest.param(
                "2026-06-01T12:00:00Z",
                datetime(2026, 6, 1, 10, 30, tzinfo=timezone(timedelta(hours=-2))),
                False,
                id="after-in-other-zone",
            ),
        ],
    )
    def test_valid_at(self, expires_at: str | None, now: datetime, valid: bool) -> None:
        """A key is valid until its expiry and not after it."""
        key = StoredKey(USER, "a@x.com", "pgp", "ab", None, expires_at, "2026-01-01T00:00:00Z", "")

        assert key.valid_at(now) is valid

    async def test_stored_expiry(self, store: Store) -> None:
        """A key stored with an expiry is valid before it and not after it."""
        stored = await store.put_key(USER, "a@x.com", _key(expires_at=NOW), "t")
        (listed,), _ = await store.keys(USER)

        assert stored.valid_at(NOW - timedelta(minutes=1))
        assert not listed.valid_at(NOW + timedelta(minutes=1))


class TestConcurrency:
    """Concurrent writers, in one Store or in two on one file, lose nothing."""

    async def test_concurrent_writes(self, store: Store) -> None:
        """50 concurrent suppression writes and 50 concurrent key writes all land."""
        await asyncio.gather(
            *(
                store.add_suppressions(USER, [("address", f"s{i}@x.com", "b", None)])
                for i in range(50)
            ),
            *(store.put_key(USER, f"k{i}@x.com", _key(f"{i:040x}"), str(i)) for i in range(50)),
        )

        suppressions, suppression_total = await store.list_suppressions(USER, 0, 1000, None, None)
        keys, key_total = await store.keys(USER)

        assert (suppression_total, key_total) == (50, 50)
        assert {s.value for s in suppressions} == {f"s{i}@x.com" for i in range(50)}
        assert {(k.address, k.fingerprint) for k in keys} == {
            (f"k{i}@x.com", f"{i:040x}") for i in range(50)
        }

    async def test_two_stores_one_file(self, db_path: Path) -> None:
        """Two Store objects on one file, as two processes would have, write concurrently."""
        first, second = await _open(db_path), await _open(db_path)
        try:
            await asyncio.gather(
                *(
                    (first if i % 2 else second).add_suppressions(
                        ACCOUNT, [("address", f"s{i}@x.com", "b", None)]
                    )
                    for i in range(60)
                ),
                *(
                    (second if i % 2 else first).put_key(USER, f"k{i}@x.com", _key(), str(i))
                    for i in range(60)
                ),
            )
            seen_by_first = await first.list_suppressions(ACCOUNT, 0, 1000, None, None)
            keys_by_second = await second.keys(USER)
        finally:
            await first.close()
            await second.close()

        third = await _open(db_path)
        try:
            suppressions, suppression_total = await third.list_suppressions(
                ACCOUNT, 0, 1000, None, None
            )
            keys, key_total = await third.keys(USER)
        finally:
            await third.close()

        assert seen_by_first[1] == keys_by_second[1] == 60
        assert (suppression_total, key_total) == (60, 60)
        assert {s.value for s in suppressions} == {f"s{i}@x.com" for i in range(60)}
        assert {k.key_text for k in keys} == {str(i) for i in range(60)}
