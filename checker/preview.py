"""The recipient preview: parse, group by domain, check each domain once, apply the policy."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from checker.domain_checker import DomainChecker
from checker.models import DomainReport, TlsLevel
from checker.names import DomainName
from checker.policy import Decision, Method, Policy, Situation, decide
from checker.recipients import Recipient, parse_recipients
from checker.store import ACCOUNT, Store, StoredKey


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """One recipient's method and why."""

    recipient: Recipient
    decision: Decision
    report: DomainReport | None
    key: StoredKey | None
    suppression: tuple[str, str] | None  # (scope, match)

    def to_json(self) -> dict[str, Any]:
        """The `recipients[]` entry of a preview."""
        r, report = self.recipient, self.report
        body: dict[str, Any] = {
            "input": r.input,
            "address": r.address,
            "domain": r.domain.unicode if r.domain else None,
            "ascii_domain": r.domain.ascii if r.domain else None,
            "method": self.decision.method,
            "reason": self.decision.reason,
            "tls_level": report.tls_level if report else TlsLevel.UNKNOWN,
            "mail": report.mail if report else None,
            "smtputf8": r.smtputf8,
            "key": self.key.to_json() if self.key else None,
            "suppression": (
                {"scope": self.suppression[0], "match": self.suppression[1]}
                if self.suppression
                else None
            ),
        }
        if r.error:
            body["error"] = r.error
        return body


@dataclass(frozen=True, slots=True)
class Preview:
    """The preview of a list of recipients under one policy."""

    policy: Policy
    results: tuple[RecipientResult, ...]

    def summary(self) -> dict[str, int]:
        """How many recipients get each method."""
        return dict(Counter(str(r.decision.method) for r in self.results))

    def to_json(self) -> dict[str, Any]:
        """`{"policy", "recipients", "summary"}`."""
        return {
            "policy": self.policy,
            "recipients": [r.to_json() for r in self.results],
            "summary": self.summary(),
        }


class PreviewEngine:
    """Joins recipients, suppressions, known keys and domain reports under a policy."""

    def __init__(self, checker: DomainChecker, store: Store) -> None:
        self._checker = checker
        self._store = store

    async def preview(
        self,
        inputs: list[str],
        policy: Policy,
        user: str | None,
        wait: float | None,
        check_slots: asyncio.Semaphore | None = None,
    ) -> Preview:
        """Decide every recipient; domains not checked within `wait` count as pending.

        `check_slots` bounds how many domain checks run at once (batch audits use it so that
        interactive requests keep probe slots).
        """
        recipients = parse_recipients(inputs)
        valid = [r for r in recipients if r.domain is not None]
        owners = [ACCOUNT, user] if user else [ACCOUNT]
        suppressed = await self._store.suppressed(
            owners, (r.key for r in valid), {r.key.rpartition("@")[2] for r in valid}
        )
        keys = await self._keys(user, valid)
        domains: dict[str, DomainName] = {}
        for r in valid:
            if r.domain is not None and _suppression(r, suppressed) is None:
                domains[r.domain.ascii] = r.domain
        reports = await self._reports(list(domains.values()), wait, check_slots)
        results = tuple(self._result(r, policy, reports, keys, suppressed) for r in recipients)
        return Preview(policy, results)

    async def _keys(self, user: str | None, valid: list[Recipient]) -> dict[str, StoredKey]:
        """Per address, the key the preview would use: a valid PGP key, else S/MIME."""
        if not user:
            return {}
        stored, _ = await self._store.keys(user, {r.key for r in valid})
        now = datetime.now(UTC)
        best: dict[str, StoredKey] = {}
        for key in stored:
            if key.valid_at(now) and (key.address not in best or key.type == "pgp"):
                best[key.address] = key
        return best

    async def _reports(
        self, names: list[DomainName], wait: float | None, slots: asyncio.Semaphore | None
    ) -> dict[str, DomainReport | None]:
        async def one(name: DomainName) -> DomainReport | None:
            if slots is None:
                return await self._checker.check(name, wait)
            cached = self._checker.cached(name)
            if cached is not None:
                return cached
            async with slots:
                return await self._checker.check(name, wait)

        found = await asyncio.gather(*(one(n) for n in names))
        return {n.ascii: report for n, report in zip(names, found, strict=True)}

    def _result(
        self,
        r: Recipient,
        policy: Policy,
        reports: dict[str, DomainReport | None],
        keys: dict[str, StoredKey],
        suppressed: dict[tuple[str, str], str],
    ) -> RecipientResult:
        suppression = _suppression(r, suppressed) if r.domain else None
        report = reports.get(r.domain.ascii) if r.domain else None
        key = keys.get(r.key)
        situation = Situation(
            valid=r.domain is not None,
            suppressed=suppression is not None,
            mail=report.mail if report else None,
            tls_level=report.tls_level if report else TlsLevel.UNKNOWN,
            tls_ok=report.tls_ok if report else False,
            has_pgp=key is not None and key.type == "pgp",
            has_smime=key is not None and key.type == "smime",
        )
        decision = decide(policy, situation)
        used = key if decision.method in (Method.PGP, Method.SMIME) else None
        return RecipientResult(r, decision, report, used, suppression)


def _suppression(r: Recipient, suppressed: dict[tuple[str, str], str]) -> tuple[str, str] | None:
    """(scope, match) of the suppression that applies; account-level wins over the user's."""
    for match, value in (("address", r.key), ("domain", r.key.rpartition("@")[2])):
        owner = suppressed.get((match, value))
        if owner is not None:
            return ("account" if owner == ACCOUNT else "user", match)
    return None
