"""Load generators for bench.http: `wrk` when it is installed, else a small keep-alive client.

Either way the load runs in a process of its own, never on the event loop it measures. Both stop
by themselves: after `duration` seconds (and, for the Python client, after `max_requests`).

The Python client, run as `python -m bench.loadgen URL CONNECTIONS DURATION MAX_REQUESTS`, keeps
one HTTP/1.1 connection per task, sends a GET, reads the headers and exactly Content-Length bytes,
and prints one JSON line: requests, seconds, latency percentiles, errors. It is lighter than an
aiohttp client but still Python: on two cores it can be the bottleneck for the hello-world
server, which understates the hello-world figure (and so flatters the ratio). `wrk` is C.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

_WRK_TIMEOUT = "5s"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One bounded load run against one URL."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-200 answers, socket errors, timeouts

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`-th percentile (0 < q ≤ 100) of `values`; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def have_wrk() -> bool:
    """True when `wrk` is on the PATH."""
    return shutil.which("wrk") is not None


@dataclass(frozen=True, slots=True)
class Load:
    """How to drive the load: the client, its connections, for how long, on which CPUs."""

    client: str  # wrk | python
    connections: int
    duration: float
    cpus: frozenset[int] | None = None  # None: wherever the scheduler likes
    max_requests: int = 2_000_000


async def run_load(url: str, load: Load) -> LoadResult:
    """Drive `load.connections` keep-alive connections at `url` for `load.duration` seconds."""
    if load.client == "wrk":
        seconds = max(1, round(load.duration))
        args = ["-t1", f"-c{load.connections}", f"-d{seconds}s", "--latency"]
        out = await _child(load, "wrk", *args, f"--timeout={_WRK_TIMEOUT}", url)
        return parse_wrk(out)
    args = [url, str(load.connections), str(load.duration), str(load.max_requests)]
    out = await _child(load, sys.executable, "-m", "bench.loadgen", *args)
    return LoadResult(**json.loads(out))


def parse_wrk(out: str) -> LoadResult:
    """The figures of one `wrk --latency` report."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s)", out)
    p50 = re.search(r"^\s*50%\s+([\d.]+)(us|ms|s)", out, re.MULTILINE)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)", out, re.MULTILINE)
    if done is None or p50 is None or p99 is None:
        raise RuntimeError(f"cannot read wrk's report:\n{out}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return LoadResult(
        requests=int(done.group(1)),
        seconds=float(done.group(2)) * _UNITS[done.group(3)] / 1000,
        p50_ms=float(p50.group(1)) * _UNITS[p50.group(2)],
        p99_ms=float(p99.group(1)) * _UNITS[p99.group(2)],
        errors=errors,
    )


async def _child(load: Load, program: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        program, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    if load.cpus is not None:
        os.sched_setaffinity(process.pid, load.cpus)
    try:
        async with asyncio.timeout(load.duration + 30):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"{program} failed ({process.returncode}): {err.decode()}")
    return out.decode()


class _Tally:
    """What every connection of the Python client saw."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.latencies: list[float] = []
        self.errors = 0


async def _connection(host: str, port: int, request: bytes, deadline: float, tally: _Tally) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while tally.budget > 0 and time.perf_counter() < deadline:
            tally.budget -= 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if length is None:
                raise RuntimeError("a response without Content-Length")
            await reader.readexactly(int(length.group(1)))
            tally.latencies.append(time.perf_counter() - started)
            if head[9:12] != b"200":
                tally.errors += 1
    finally:
        writer.close()


async def _drive(url: str, connections: int, duration: float, max_requests: int) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    tally = _Tally(max_requests)
    started = time.perf_counter()
    deadline = started + duration
    results = await asyncio.gather(
        *(_connection(host, port, request, deadline, tally) for _ in range(connections)),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - started
    failed = sum(1 for r in results if isinstance(r, Exception))
    return LoadResult(
        requests=len(tally.latencies),
        seconds=elapsed,
        p50_ms=percentile(tally.latencies, 50) * 1000,
        p99_ms=percentile(tally.latencies, 99) * 1000,
        errors=tally.errors + failed,
    )


def main() -> None:
    """The client process: drive the load, print one JSON line with the figures."""
    url, connections, duration, max_requests = sys.argv[1:5]
    new_loop: Callable[[], asyncio.AbstractEventLoop]
    try:
        import uvloop  # the client's own speed, not the server's; optional

        new_loop = uvloop.new_event_loop
    except ImportError:
        new_loop = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=new_loop) as runner:
        result = runner.run(_drive(url, int(connections), float(duration), int(max_requests)))
    print(json.dumps(dataclasses.asdict(result)))


if __name__ == "__main__":
    main()
