"""The printed report of bench.http: per configuration, what each option bought, the encoders."""

from __future__ import annotations

import json
import statistics
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from bench.loadgen import LoadResult, percentile

DOMAIN = "good.test"


@dataclass(frozen=True, slots=True)
class Config:
    """One server configuration: its event loop and its JSON encoder."""

    loop: str  # auto | asyncio | uvloop
    json: str  # auto | stdlib | orjson
    control: bool = False  # the baseline again, to show the noise floor

    @property
    def label(self) -> str:
        """E.g. `uvloop+orjson`."""
        return f"{self.loop}+{self.json}" + ("-again" if self.control else "")


@dataclass
class Figures:
    """Everything measured for one configuration, a list entry per round."""

    hello: list[LoadResult] = field(default_factory=list)
    app: list[LoadResult] = field(default_factory=list)
    hello_cpu_us: list[float] = field(default_factory=list)  # server CPU per request
    app_cpu_us: list[float] = field(default_factory=list)
    get_ms: list[list[float]] = field(default_factory=list)  # one at a time, a list a round
    preview_ms: list[list[float]] = field(default_factory=list)


class Measured(Protocol):
    """A server configuration and what was measured on it."""

    config: Config
    loop_name: str
    encoder: str
    figures: Figures


def report(header: str, servers: Sequence[Measured], bodies: Sequence[object]) -> None:
    """Print every configuration, then (with several) what each bought, then the encoders.

    Raw figures are medians over the rounds. A ratio is the median of per-round ratios, each
    between runs made next to each other in time, so that the machine's drift cancels out.
    """
    print(header)
    for s in servers:
        _one(s)
    if len(servers) > 1:
        _compare(servers)
    _encoders(bodies, servers[0].figures)


def _rps(runs: Sequence[LoadResult]) -> list[float]:
    return [r.rps for r in runs]


def _p(runs: Sequence[LoadResult], q: int) -> list[float]:
    return [r.p50_ms if q == 50 else r.p99_ms for r in runs]


def _rounds_p50(rounds: Sequence[Sequence[float]]) -> list[float]:
    return [percentile(r, 50) for r in rounds]


def _paired(top: Sequence[float], bottom: Sequence[float]) -> float:
    """The median over rounds of top ÷ bottom."""
    return statistics.median(t / b for t, b in zip(top, bottom, strict=True))


def _one(s: Measured) -> None:
    f = s.figures
    print(f"\n[{s.config.label}] event loop {s.loop_name}, JSON {s.encoder}")
    print(f"  {'under load':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11}")
    rows = [
        ("hello-world", f.hello, f.hello_cpu_us),
        (f"GET /v1/domains/{DOMAIN}", f.app, f.app_cpu_us),
    ]
    med = statistics.median
    for name, runs, cpu in rows:
        print(f"  {name:26} {med(_rps(runs)):8.0f} {med(_p(runs, 50)):8.2f} "
              f"{med(_p(runs, 99)):8.2f} {med(cpu):11.0f}")  # fmt: skip
    ratios = (
        _paired(_rps(f.app), _rps(f.hello)),
        _paired(_p(f.app, 50), _p(f.hello, 50)),
        _paired(_p(f.app, 99), _p(f.hello, 99)),
        _paired(f.app_cpu_us, f.hello_cpu_us),
    )
    widths = (7, 7, 7, 10)
    print(f"  {'app ÷ hello-world':26} "
          + " ".join(f"{r:{w}.2f}×" for r, w in zip(ratios, widths, strict=True)))  # fmt: skip
    gets, previews = [ms for r in f.get_ms for ms in r], [ms for r in f.preview_ms for ms in r]
    get50, get99 = percentile(gets, 50), percentile(gets, 99)
    pre50, pre99 = percentile(previews, 50), percentile(previews, 99)
    print(f"  {'one at a time':26} {'':8} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"  {'GET /v1/domains (cached)':26} {'':8} {get50:8.2f} {get99:8.2f}")
    print(f"  {'POST /v1/preview (100)':26} {'':8} {pre50:8.2f} {pre99:8.2f}")
    pre_ratio = _paired(_rounds_p50(f.preview_ms), _rounds_p50(f.get_ms))
    print(f"  {'preview ÷ one GET':26} {'':8} {pre_ratio:7.1f}× {pre99 / get99:7.1f}×")
    print(f"  preview per recipient: {(pre50 - get50) / 100 * 1000:.0f} µs beyond one GET")


def _compare(servers: Sequence[Measured]) -> None:
    base = servers[0].figures
    print(f"\nwhat each bought, against {servers[0].config.label} in this run (>1 is better):")
    heads = ("app req/s", "app CPU/req", "hello req/s", "hello CPU/req", "preview p50")
    print(f"  {'config':20} " + " ".join(f"{h:>13}" for h in heads))
    for s in servers[1:]:
        f = s.figures
        gains = (
            _paired(_rps(f.app), _rps(base.app)),
            _paired(base.app_cpu_us, f.app_cpu_us),
            _paired(_rps(f.hello), _rps(base.hello)),
            _paired(base.hello_cpu_us, f.hello_cpu_us),
            _paired(_rounds_p50(base.preview_ms), _rounds_p50(f.preview_ms)),
        )
        print(f"  {s.config.label:20} " + " ".join(f"{g:12.2f}×" for g in gains))
    print("  (the -again row is the baseline measured once more: how far from 1.00× noise goes)")


def _encoders(bodies: Sequence[object], figures: Figures) -> None:
    """The JSON encoders alone, in this process, on the very bodies the app sent."""
    try:
        import orjson
    except ImportError:
        return
    print("\nJSON encoding alone (this process, the bodies the app sent, best of 5):")
    previews = [ms for r in figures.preview_ms for ms in r]
    shares = (statistics.median(figures.app_cpu_us), percentile(previews, 50) * 1000)
    of = ("a cached GET's server CPU", "a preview's p50")
    for name, body, whole, what in zip(
        ("DomainReport", "preview"), bodies, shares, of, strict=True
    ):
        size = len(orjson.dumps(body))
        stdlib = _best(partial(json.dumps, body, ensure_ascii=False, separators=(",", ":")))
        fast = _best(partial(orjson.dumps, body))
        saves = (stdlib - fast) / whole
        print(f"  {name:12} {size:6d} B: stdlib {stdlib:6.1f} µs, orjson {fast:5.1f} µs: "
              f"{stdlib / fast:4.1f}× faster, saves {saves:.1%} of {what}")  # fmt: skip


def _best(call: Callable[[], object]) -> float:
    """Microseconds per call, the best of five timings."""
    number = 200
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6
