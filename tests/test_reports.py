"""Reports: every check and preview recorded, summarised and listed per account and per user."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from checker import reports as reports_module
from checker.api_reports import parse_date
from checker.auth import Scope
from checker.http_errors import ApiError
from checker.models import DomainReport, MailStatus, MxSource, TlsLevel
from checker.reports import ReportLog
from checker.store import Store
from checker.wiring import AUTH_KEY, REPORTS_KEY
from tests.conftest import ClientFactory

Client = TestClient[web.Request, web.Application]
ANN, BOB = "ann@corp.test", "bob@corp.test"
SUMMARY, FAILURES = "/v1/reports/summary", "/v1/reports/tls-failures"
# Two recipients on a verified domain, three without STARTTLS, one self-signed, one null MX, and
# one invalid address (no domain: not counted).
RECIPIENTS = [
    "a@good.test",
    "b@good.test",
    "c@nostarttls.test",
    "d@nostarttls.test",
    "e@nostarttls.test",
    "f@selfsigned.test",
    "g@nullmx.test",
    "not an address",
]
FAILING = [("nostarttls.test", "none", 3), ("nullmx.test", "unknown", 1)]
FAILING += [("selfsigned.test", "encrypted", 1)]
DAY = 86_400.0


async def _preview(client: Client, recipients: list[str], **body: Any) -> None:
    response = await client.post("/v1/preview", json={"recipients": recipients, **body})
    assert response.status == 200, await response.text()


async def _read(
    client: Client,
    path: str,
    query: dict[str, str] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Any:
    """GET `path` after writing what is pending; the JSON body, its status checked."""
    await client.app[REPORTS_KEY].flush()
    response = await client.get(path, params=query or {}, headers=headers or {})
    assert response.status == status, await response.text()
    return await response.json()


async def _sent(make_client: ClientFactory) -> Client:
    """A client after one preview of RECIPIENTS and one domain check of good.test."""
    client = await make_client()
    await _preview(client, RECIPIENTS)
    assert (await client.get("/v1/domains/good.test")).status == 200
    return client


def _report(
    domain: str, level: TlsLevel, tls_ok: bool, reasons: tuple[str, ...] = ()
) -> DomainReport:
    now = datetime.now(UTC)
    return DomainReport(
        domain, domain, MailStatus.ACCEPTS, MxSource.MX, level, tls_ok, reasons, (), (), now, now
    )


class TestSummary:
    """GET /v1/reports/summary counts exactly what was sent."""

    async def test_counts(self, make_client: ClientFactory) -> None:
        """Recipients by method, domains by level, checks, the ratio and the failing domains."""
        body = await _read(await _sent(make_client), SUMMARY)
        assert body["after_date"] is None
        assert body["before_date"] is None
        assert body["recipients"] == {"tls": 2, "escrow": 4, "undeliverable": 1}
        assert body["recipients_total"] == 7
        assert body["domains_checked"] == {"verified": 1, "none": 1, "encrypted": 1, "unknown": 1}
        assert body["checks_total"] == 5  # four domains in the preview, good.test once more
        assert body["tls_ok_ratio"] == 0.25
        top = body["top_failing_domains"]
        assert [(d["domain"], d["tls_level"], d["recipients"]) for d in top] == FAILING
        assert set(top[0]) == {"domain", "tls_level", "reasons", "recipients"}
        assert top[0]["reasons"] == ["no_starttls"]

    async def test_empty(self, make_client: ClientFactory) -> None:
        """With nothing recorded every count is zero and the ratio is null."""
        body = await _read(await make_client(), SUMMARY)
        assert body == {
            "after_date": None,
            "before_date": None,
            "recipients": {},
            "recipients_total": 0,
            "domains_checked": {},
            "checks_total": 0,
            "tls_ok_ratio": None,
            "top_failing_domains": [],
        }

    async def test_each_preview_counts(self, make_client: ClientFactory) -> None:
        """The same recipients previewed twice count twice; domains stay distinct."""
        client = await make_client()
        for _ in range(2):
            await _preview(client, ["a@good.test", "c@nostarttls.test"])
        body = await _read(client, SUMMARY)
        assert body["recipients"] == {"tls": 2, "escrow": 2}
        assert body["domains_checked"] == {"verified": 1, "none": 1}
        assert body["checks_total"] == 4
        assert body["top_failing_domains"][0]["recipients"] == 2


class TestTlsFailures:
    """GET /v1/reports/tls-failures lists the domains that are not tls_ok, paged."""

    async def test_lists_failures(self, make_client: ClientFactory) -> None:
        """Each failing domain with level, mail, reasons, last seen and recipients affected."""
        started = time.time()
        client = await _sent(make_client)
        body = await _read(client, FAILURES)
        failures = body["failures"]
        assert [(f["domain"], f["tls_level"], f["recipients"]) for f in failures] == FAILING
        assert (body["first_row"], body["matches"], body["total"]) == (0, 3, 3)
        assert [f["mail"] for f in failures] == ["accepts", "null_mx", "accepts"]
        assert failures[0]["reasons"] == ["no_starttls"]
        for failure in failures:
            seen = datetime.strptime(failure["last_seen"], "%Y-%m-%dT%H:%M:%SZ")
            assert started - 1 <= seen.replace(tzinfo=UTC).timestamp() <= time.time()

    async def test_paging(self, make_client: ClientFactory) -> None:
        """first_row and matches page the list; matches in the answer is the rows returned."""
        client = await _sent(make_client)
        first = await _read(client, FAILURES, {"first_row": "0", "matches": "2"})
        rest = await _read(client, FAILURES, {"first_row": "2", "matches": "2"})
        beyond = await _read(client, FAILURES, {"first_row": "9"})
        assert [f["domain"] for f in first["failures"] + rest["failures"]] == [
            d for d, _, _ in FAILING
        ]
        assert (first["matches"], first["total"]) == (2, 3)
        assert (rest["first_row"], rest["matches"], rest["total"]) == (2, 1, 3)
        assert (beyond["failures"], beyond["total"]) == ([], 3)

    @pytest.mark.parametrize("query", [{"matches": "0"}, {"first_row": "-1"}, {"matches": "x"}])
    async def test_bad_paging(self, make_client: ClientFactory, query: dict[str, str]) -> None:
        """Bad paging is a 400 invalid_paging."""
        body = await _read(await make_client(), FAILURES, query, status=400)
        assert body["error"]["code"] == "invalid_paging"


class TestDates:
    """after_date and before_date bound the window; bad ones are refused."""

    async def test_window_before_the_records(self, make_client: ClientFactory) -> None:
        """A window that ends before anything was recorded is empty."""
        client = await _sent(make_client)
        query = {"after_date": "2000-01-01", "before_date": "2000-01-02 00:00:00"}
        body = await _read(client, SUMMARY, query)
        assert (body["after_date"], body["before_date"]) == (
            "2000-01-01T00:00:00Z",
            "2000-01-02T00:00:00Z",
        )
        assert (body["recipients_total"], body["checks_total"]) == (0, 0)
        assert body["tls_ok_ratio"] is None
        assert (await _read(client, FAILURES, query))["total"] == 0

    async def test_window_around_the_records(self, make_client: ClientFactory) -> None:
        """A window around now, in either format and any offset, holds every record."""
        client = await _sent(make_client)
        now = datetime.now(UTC).replace(microsecond=0)
        before = (now + timedelta(hours=1)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        after = (now - timedelta(hours=1)).astimezone(UTC).isoformat().replace("+00:00", "Z")
        offset = (now - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5)))
        for start in (after, offset.isoformat(), (now - timedelta(hours=1)).strftime("%Y-%m-%d")):
            body = await _read(client, SUMMARY, {"after_date": start, "before_date": before})
            assert (body["recipients_total"], body["checks_total"]) == (7, 5), start
        failures = await _read(client, FAILURES, {"after_date": after, "before_date": before})
        assert failures["total"] == 3

    async def test_window_after_the_records(self, make_client: ClientFactory) -> None:
        """A window that starts after the records is empty."""
        client = await _sent(make_client)
        body = await _read(client, SUMMARY, {"after_date": "2999-01-01T00:00:00+01:00"})
        assert body["after_date"] == "2998-12-31T23:00:00Z"
        assert body["checks_total"] == 0

    @pytest.mark.parametrize(
        "query",
        [
            {"after_date": "yesterday"},
            {"before_date": "2026-13-01"},
            {"after_date": "2026-12-03T25:00:00Z"},
            {"before_date": "1700000000"},
            {"after_date": "2026-12-03" + " " * 100 + "x"},
            {"after_date": "0001-01-01T00:00:00+05:00"},
        ],
    )
    async def test_bad_date(self, make_client: ClientFactory, query: dict[str, str]) -> None:
        """A date that is not a date is a 400 invalid_date, on both routes."""
        client = await make_client()
        for path in (SUMMARY, FAILURES):
            body = await _read(client, path, query, status=400)
            assert body["error"]["code"] == "invalid_date"

    async def test_unencoded_plus(self, make_client: ClientFactory) -> None:
        """An offset whose `+` was not URL-encoded (it arrives as a space) still reads as one."""
        client = await make_client()
        response = await client.get(SUMMARY + "?after_date=2026-12-03T16:00:00+02:00")
        assert (await response.json())["after_date"] == "2026-12-03T14:00:00Z"

    async def test_after_later_than_before(self, make_client: ClientFactory) -> None:
        """after_date later than before_date is a 400; equal dates are an empty window."""
        client = await make_client()
        later = {"after_date": "2026-12-03T00:00:01Z", "before_date": "2026-12-03 00:00:00"}
        assert (await _read(client, SUMMARY, later, status=400))["error"]["code"] == "invalid_date"
        same = {"after_date": "2026-12-03", "before_date": "2026-12-03T00:00:00Z"}
        assert (await _read(client, SUMMARY, same))["checks_total"] == 0

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("2026-12-03", "2026-12-03T00:00:00+00:00"),
            ("2026-12-03T14:00:00Z", "2026-12-03T14:00:00+00:00"),
            ("2026-12-03t14:00:00z", "2026-12-03T14:00:00+00:00"),
            ("2026-12-03T16:00:00+02:00", "2026-12-03T14:00:00+00:00"),
            ("2026-12-03T14:00:00.250-01:00", "2026-12-03T15:00:00.250000+00:00"),
            ("2026-12-03 14:00:00", "2026-12-03T14:00:00+00:00"),
            (" 2026-12-03T14:00 ", "2026-12-03T14:00:00+00:00"),
            ("2026-12-03T16:00:00 02:00", "2026-12-03T14:00:00+00:00"),
            ("2026-12-03 16:00:00 0200", "2026-12-03T14:00:00+00:00"),
        ],
    )
    def test_parse_date(self, raw: str, expected: str) -> None:
        """ISO 8601 with Z, an offset, or none (UTC), date-only, and the space-separated form."""
        parsed = parse_date(raw, "after_date")
        assert parsed is not None
        assert datetime.fromtimestamp(parsed, UTC).isoformat() == expected

    @pytest.mark.parametrize("raw", [None, "", "  "])
    def test_absent_date(self, raw: str | None) -> None:
        """An absent or blank date leaves that side of the window open."""
        assert parse_date(raw, "before_date") is None

    def test_error_names_the_parameter(self) -> None:
        """The 400 says which parameter was wrong."""
        with pytest.raises(ApiError) as caught:
            parse_date("soon", "before_date")
        assert (caught.value.status, caught.value.code) == (400, "invalid_date")
        assert "before_date" in caught.value.message


class TestOwners:
    """Account routes cover every owner; user routes only that user's records."""

    async def test_user_routes_see_their_own(self, make_client: ClientFactory) -> None:
        """Each user's route counts only that user's previews; the account route counts all."""
        client = await make_client()
        await _preview(client, ["a@good.test", "b@good.test"], user=ANN)
        await _preview(client, ["c@nostarttls.test"], user=BOB)
        await _preview(client, ["d@selfsigned.test"])
        ann = await _read(client, f"/v1/users/{ANN}/reports/summary")
        bob = await _read(client, f"/v1/users/{BOB}/reports/tls-failures")
        everyone = await _read(client, SUMMARY)
        assert (ann["recipients"], ann["domains_checked"]) == ({"tls": 2}, {"verified": 1})
        assert ann["top_failing_domains"] == []
        assert [(f["domain"], f["recipients"]) for f in bob["failures"]] == [("nostarttls.test", 1)]
        assert everyone["recipients"] == {"tls": 2, "escrow": 2}
        assert everyone["domains_checked"] == {"verified": 1, "none": 1, "encrypted": 1}

    async def test_user_path_must_be_an_address(self, make_client: ClientFactory) -> None:
        """A user that is not an e-mail address is a 400 invalid_user."""
        body = await _read(await make_client(), "/v1/users/nobody/reports/summary", status=400)
        assert body["error"]["code"] == "invalid_user"

    async def test_user_credential(self, make_client: ClientFactory) -> None:
        """A user key's previews are its user's; it reads its own reports, no one else's."""
        client = await make_client(auth="on")
        ann, account = await _bearer(client, Scope.USER, ANN), await _bearer(client, Scope.ACCOUNT)
        response = await client.post(
            "/v1/preview", json={"recipients": ["c@nostarttls.test"]}, headers=ann
        )
        assert response.status == 200
        own = await _read(client, f"/v1/users/{ANN}/reports/tls-failures", headers=ann)
        assert [(f["domain"], f["recipients"]) for f in own["failures"]] == [("nostarttls.test", 1)]
        for path in (SUMMARY, FAILURES, f"/v1/users/{BOB}/reports/summary"):
            body = await _read(client, path, status=403, headers=ann)
            assert body["error"]["code"] == "forbidden"
        assert (await _read(client, SUMMARY, headers=account))["recipients"] == {"escrow": 1}
        bob = await _read(client, f"/v1/users/{BOB}/reports/summary", headers=account)
        assert bob["recipients_total"] == 0

    async def test_domain_checks_by_owner(self, make_client: ClientFactory) -> None:
        """A domain check by a user key is that user's; by an account key the account's."""
        client = await make_client(auth="on")
        ann, account = await _bearer(client, Scope.USER, ANN), await _bearer(client, Scope.ACCOUNT)
        assert (await client.get("/v1/domains/nostarttls.test", headers=ann)).status == 200
        assert (await client.get("/v1/domains/good.test", headers=account)).status == 200
        mine = await _read(client, f"/v1/users/{ANN}/reports/summary", headers=ann)
        everyone = await _read(client, SUMMARY, headers=account)
        assert (mine["domains_checked"], mine["checks_total"]) == ({"none": 1}, 1)
        assert (everyone["domains_checked"], everyone["checks_total"]) == (
            {"none": 1, "verified": 1},
            2,
        )


async def _bearer(client: Client, scope: Scope, user: str | None = None) -> dict[str, str]:
    """Authorization headers with an OAuth access token of a new credential."""
    credential, secret = await client.app[AUTH_KEY].create_credential(scope, user, None)
    data = {"grant_type": "client_credentials", "client_id": credential.token}
    response = await client.post("/oauth/token", data={**data, "client_secret": secret})
    return {"Authorization": f"Bearer {(await response.json())['access_token']}"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """An open store of its own."""
    opened = Store(tmp_path / "reports.db")
    await opened.open()
    yield opened
    await opened.close()


async def _rows(store: Store) -> tuple[int, int]:
    """How many rows check_log and recipient_log hold."""

    def count(db: Any) -> tuple[int, int]:
        checks = db.execute("SELECT count(*) FROM check_log").fetchone()[0]
        return int(checks), int(db.execute("SELECT count(*) FROM recipient_log").fetchone()[0])

    return await store.run(count)


class TestReportLog:
    """The log itself: latest check wins, retention, the buffer bound, failures, shutdown."""

    async def test_latest_check_decides(self, store: Store) -> None:
        """A domain's level and failure status come from its latest check in the window."""
        now = [1_000_000.0]
        log = ReportLog(store, 30, clock=lambda: now[0])
        log.record_check("", _report("fixed.test", TlsLevel.NONE, False, ("no_starttls",)))
        log.record_check("", _report("broke.test", TlsLevel.VERIFIED, True))
        now[0] += 10
        log.record_check("", _report("fixed.test", TlsLevel.VERIFIED, True))
        log.record_check("", _report("broke.test", TlsLevel.ENCRYPTED, False, ("x",)))
        await log.flush()
        body = await log.summary(None, None, None)
        assert body["domains_checked"] == {"verified": 1, "encrypted": 1}
        assert (body["checks_total"], body["tls_ok_ratio"]) == (4, 0.5)
        failures, total = await log.tls_failures(None, None, None, 0, 10)
        assert total == 1
        assert [(f["domain"], f["reasons"]) for f in failures] == [("broke.test", ["x"])]
        assert failures[0]["last_seen"] == "1970-01-12T13:46:50Z"
        earlier, _ = await log.tls_failures(None, None, now[0], 0, 10)
        assert [f["domain"] for f in earlier] == ["fixed.test"]

    async def test_recipients_aggregated(self, store: Store) -> None:
        """Recipients are written as one row per (domain, method) with its count."""
        log = ReportLog(store, 30)
        log.record_recipients(
            "", [("a.test", "tls")] * 3 + [("a.test", "escrow"), ("b.test", "tls")]
        )
        assert log.pending == 3
        await log.flush()
        assert (await log.summary("", None, None))["recipients"] == {"tls": 4, "escrow": 1}

    async def test_retention(self, store: Store) -> None:
        """Rows older than the retention are pruned; newer ones stay."""
        now = [10 * DAY]
        log = ReportLog(store, 2, clock=lambda: now[0])
        log.record_check("", _report("old.test", TlsLevel.NONE, False))
        log.record_recipients("", [("old.test", "escrow")])
        now[0] += 1.5 * DAY
        log.record_check("", _report("new.test", TlsLevel.NONE, False))
        log.record_recipients("", [("new.test", "escrow")])
        await log.flush()
        now[0] += 1 * DAY
        assert await log.prune() == 2
        assert await _rows(store) == (1, 1)
        failures, _ = await log.tls_failures(None, None, None, 0, 10)
        assert [f["domain"] for f in failures] == ["new.test"]

    async def test_prune_in_chunks(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        """Pruning deletes in bounded chunks until nothing old is left."""
        monkeypatch.setattr(reports_module, "PRUNE_CHUNK", 3)
        now = [0.0]
        log = ReportLog(store, 1, clock=lambda: now[0])
        log.record_recipients("", [(f"d{n}.test", "tls") for n in range(10)])
        await log.flush()
        now[0] = 2 * DAY
        assert await log.prune() == 10
        assert await _rows(store) == (0, 0)

    async def test_run_prunes_at_start(self, store: Store) -> None:
        """The background loop prunes as soon as it starts."""
        now = [0.0]
        log = ReportLog(store, 1, clock=lambda: now[0])
        log.record_recipients("", [("old.test", "tls")])
        await log.flush()
        now[0] = 2 * DAY
        task = asyncio.create_task(log.run())
        await asyncio.sleep(0)  # the loop starts and queues its first prune on the store thread
        assert await _rows(store) == (0, 0)  # queued behind it
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def test_bound_drops_oldest(self, store: Store) -> None:
        """Beyond the bound the oldest pending rows are dropped and counted."""
        log = ReportLog(store, 30, max_pending=3)
        for n in range(5):
            log.record_recipients("", [(f"d{n}.test", "tls")])
        assert (log.pending, log.dropped) == (3, 2)
        assert await log.flush() == 3
        failures_free = await log.summary(None, None, None)
        assert failures_free["recipients"] == {"tls": 3}
        assert (log.pending, log.dropped) == (0, 2)

    async def test_failed_write_keeps_rows(self, store: Store) -> None:
        """A database error leaves the rows pending for the next flush."""
        log = ReportLog(store, 30)
        log.record_recipients("", [("a.test", "tls")])
        await store.run(lambda db: db.execute("ALTER TABLE recipient_log RENAME TO gone"))
        with pytest.raises(Exception, match="recipient_log"):
            await log.flush()
        assert log.pending == 1
        await store.run(lambda db: db.execute("ALTER TABLE gone RENAME TO recipient_log"))
        assert await log.flush() == 1
        assert await _rows(store) == (0, 1)

    async def test_cancelled_run_flushes(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Cancelling the loop writes what is pending before it ends."""
        monkeypatch.setattr(reports_module, "FLUSH_EVERY", 3600.0)
        log = ReportLog(store, 30)
        task = asyncio.create_task(log.run())
        await asyncio.sleep(0)
        log.record_check("", _report("a.test", TlsLevel.VERIFIED, True))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (log.pending, await _rows(store)) == (0, (1, 0))


class TestShutdown:
    """Records pending at shutdown reach the database."""

    async def test_flush_on_close(
        self, make_client: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Close the app with rows pending (no periodic flush yet), reopen: they are there."""
        monkeypatch.setattr(reports_module, "FLUSH_EVERY", 3600.0)
        db = str(tmp_path / "shutdown.db")
        first = await make_client(db=db)
        await _preview(first, RECIPIENTS)
        assert first.app[REPORTS_KEY].pending == 8  # 4 checks, 4 (domain, method) pairs
        await first.close()
        second = await make_client(db=db)
        body = await _read(second, SUMMARY)
        assert (body["recipients_total"], body["checks_total"]) == (7, 4)
