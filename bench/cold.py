"""Cold-check benchmark: one domain check from empty caches, against loopback servers with delays.

Run: `.venv/bin/python -m bench.cold` (options: --rtt, --runs).

The servers are bench/audit.py's: a DNS server that answers every query after `rtt`, and an SMTP
server that waits `rtt` before its greeting, its EHLO reply and its STARTTLS reply (the QUIT reply
comes at once), then does a real TLS handshake with a trustme certificate. The round trips a
check cannot avoid, and the delay each carries here:

    MX query of the domain                        rtt
    A and AAAA of the MX host (asked together)    rtt, counted once
    TCP connect                                   none added (loopback)
    greeting, EHLO, STARTTLS                      3 × rtt
    TLS handshake (TLS 1.3: one round trip)       none added (loopback)
    QUIT                                          none added
                                          bound = 5 × rtt

Each run builds a fresh engine (empty DNS, probe and report caches) and checks a domain it has
never seen. The same runs against servers with no delay, in the same process and run, give the
check's own cost (TLS handshake, certificate parsing, grading): the bound plus that cost is the
best one could hope for, and both ratios are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from bench.audit import Servers, cold_check
from checker.settings import Settings

ROUND_TRIPS = (
    ("MX query", 1),
    ("A + AAAA of the MX host (parallel)", 1),
    ("TCP connect", 0),
    ("greeting", 1),
    ("EHLO", 1),
    ("STARTTLS", 1),
    ("TLS 1.3 handshake", 0),
    ("QUIT", 0),
)


def _settings(servers: Servers, tmp: Path) -> Settings:
    return Settings.from_env(
        {
            "CHECKER_NAMESERVERS": f"127.0.0.1:{servers.dns_port}",
            "CHECKER_SMTP_PORT": str(servers.smtp_port),
            "CHECKER_CA_FILE": str(servers.ca_file),
            "CHECKER_ALLOW_NETWORKS": "127.0.1.0/24",
            "CHECKER_ALLOW_SPECIAL_USE": "test",
            "CHECKER_HELO_NAME": "bench.mailpreflight.test",
            "CHECKER_DB": str(tmp / "cold.db"),
        }
    )


async def _cold_checks(settings: Settings, runs: int) -> list[float]:
    """Seconds of `runs` checks, each of a new domain by a new engine (nothing cached)."""
    return [await cold_check(settings, f"d{n}.bench.test") for n in range(runs)]


def main() -> None:
    """Start both sets of servers, time the cold checks, print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rtt", type=float, default=0.05, help="seconds per DNS answer/SMTP reply")
    parser.add_argument("--runs", type=int, default=15, help="cold checks per server set")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        (Path(tmp) / "slow").mkdir()
        (Path(tmp) / "fast").mkdir()
        slow = Servers(args.runs, 1, args.rtt, Path(tmp) / "slow")
        fast = Servers(args.runs, 1, 0.0, Path(tmp) / "fast")
        delayed = asyncio.run(_cold_checks(_settings(slow, Path(tmp)), args.runs))
        free = asyncio.run(_cold_checks(_settings(fast, Path(tmp)), args.runs))
    bound = sum(n for _, n in ROUND_TRIPS) * args.rtt
    measured, cost = statistics.median(delayed), statistics.median(free)
    print(f"one cold check, {args.runs} runs each, medians (rtt {args.rtt * 1000:.0f} ms):")
    for name, n in ROUND_TRIPS:
        print(f"  {name:36} {n * args.rtt * 1000:6.0f} ms")
    print(f"  {'bound: unavoidable round trips':36} {bound * 1000:6.0f} ms")
    print(f"measured with delays           {measured * 1000:7.1f} ms "
          f"(min {min(delayed) * 1000:.1f}, max {max(delayed) * 1000:.1f})")  # fmt: skip
    print(f"measured without delays        {cost * 1000:7.1f} ms  (the check's own cost)")
    print(f"ratio to the bound             {measured / bound:7.2f}×")
    print(f"ratio to bound + own cost      {measured / (bound + cost):7.2f}×")


if __name__ == "__main__":
    main()
