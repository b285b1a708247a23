"""Prometheus metrics in the app's own registry; labels are bounded enums, never names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """Every metric the service exports, registered in one CollectorRegistry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "mailpreflight_http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "mailpreflight_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.checks = Counter(
            "mailpreflight_domain_checks_total",
            "Domain reports produced (not served from cache), by mail status and TLS level.",
            ["mail", "level"],
            registry=r,
        )
        self.probes = Counter(
            "mailpreflight_probes_total", "SMTP probes by status.", ["status"], registry=r
        )
        self.probe_latency = Histogram(
            "mailpreflight_probe_duration_seconds",
            "SMTP probe duration by status.",
            ["status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.probes_in_flight = Gauge(
            "mailpreflight_probes_in_flight", "SMTP probes connected right now.", registry=r
        )
        self.dns_queries = Counter(
            "mailpreflight_dns_queries_total",
            "DNS queries sent, by record type and outcome.",
            ["rdtype", "outcome"],
            registry=r,
        )
        self.cache_lookups = Counter(
            "mailpreflight_cache_lookups_total",
            "Cache lookups by layer (dns, probe, report) and result (hit, miss, stale).",
            ["layer", "result"],
            registry=r,
        )

        self.auth_failures = Counter(
            "mailpreflight_auth_failures_total",
            "Refused credentials by reason code.",
            ["code"],
            registry=r,
        )
        self.rate_limited = Counter(
            "mailpreflight_rate_limited_total",
            "Requests refused by a per-credential limit (rate, concurrency).",
            ["limit"],
            registry=r,
        )
        self.report_rows_dropped = Counter(
            "mailpreflight_report_rows_dropped_total",
            "Report log rows dropped unwritten because the buffer was full.",
            registry=r,
        )

        self.prefetch = Counter(
            "mailpreflight_prefetch_total",
            "Background checks by outcome: warmed (start-up), refreshed (refresh-ahead),"
            " dropped (queue full), failed.",
            ["outcome"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "mailpreflight_queue_depth",
            "Items waiting, by queue (prefetch, audit).",
            ["queue"],
            registry=r,
        )
        self.audit_jobs = Counter(
            "mailpreflight_audit_jobs_total",
            "Audit jobs reaching a status (queued, done, cancelled, failed).",
            ["status"],
            registry=r,
        )
        self.preview_recipients = Counter(
            "mailpreflight_preview_recipients_total",
            "Recipients decided, by source (preview, audit) and method.",
            ["source", "method"],
            registry=r,
        )

    def cache_recorder(self, layer: str) -> CacheRecorder:
        """A callback for FlightCache that counts hits and misses of one layer."""
        return CacheRecorder(self, layer)


class CacheRecorder:
    """Counts hits, stale hits and misses of one cache layer."""

    def __init__(self, metrics: Metrics, layer: str) -> None:
        self._children = {
            r: metrics.cache_lookups.labels(layer, r) for r in ("hit", "miss", "stale")
        }

    def __call__(self, result: str) -> None:
        self._children[result].inc()
