"""Settings: CHECKER_* variables read once into a frozen dataclass, bad values refused."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest

from checker.settings import Nameserver, Settings, SettingsError

# A fixed EHLO name keeps the default-value tests off the host's name lookup.
_HELO = {"CHECKER_HELO_NAME": "probe.example.net"}


def _from_env(**variables: str) -> Settings:
    """Settings from CHECKER_<NAME> variables given as name=value."""
    env = {**_HELO, **{f"CHECKER_{k.upper()}": v for k, v in variables.items()}}
    return Settings.from_env(env)


class TestDefaults:
    """Unset or blank variables keep the documented defaults."""

    def test_documented_defaults(self) -> None:
        """An empty environment gives the defaults DESIGN.md documents."""
        s = Settings.from_env(_HELO)
        assert s.host == "127.0.0.1"
        assert s.port == 8080
        assert s.nameservers == ()
        assert s.smtp_port == 25
        assert s.allow_networks == ()
        assert s.ca_file is None
        assert s.allow_special_use == ()
        assert s.min_tls == "1.2"
        assert s.require_verified is True
        assert s.db == Path("var/mailpreflight.db")
        assert s.auth is True
        assert s.log_format == "text"
        assert s.metrics_public is False
        assert s.secret_key_file == Path("var/secret.key")
        assert s.event_loop == "auto"

    def test_blank_values_keep_defaults(self) -> None:
        """A variable set to whitespace is treated as unset."""
        s = _from_env(port="  ", nameservers="", min_tls=" ", auth="")
        assert (s.port, s.nameservers, s.min_tls, s.auth) == (8080, (), "1.2", True)

    def test_unrelated_variables_ignored(self) -> None:
        """Variables without the CHECKER_ prefix, or unknown ones, change nothing."""
        env = {**_HELO, "PORT": "9", "CHECKER_NO_SUCH_THING": "x", "checker_port": "9"}
        assert Settings.from_env(env) == Settings.from_env(_HELO)

    def test_settings_are_frozen(self) -> None:
        """Settings cannot be changed after they are read."""
        s = Settings.from_env(_HELO)
        with pytest.raises(dataclasses.FrozenInstanceError):
            s.port = 1  # type: ignore[misc]  # the assignment is what is being refused

    @pytest.mark.parametrize(
        ("fqdn", "helo"),
        [
            pytest.param("mail.example.net", "mail.example.net", id="fqdn"),
            pytest.param("buildbox", "mailpreflight.invalid", id="bare-host-name"),
            pytest.param("buildbox.localdomain", "mailpreflight.invalid", id="localdomain"),
        ],
    )
    def test_default_helo_name(self, monkeypatch: pytest.MonkeyPatch, fqdn: str, helo: str) -> None:
        """The default EHLO name is the host's FQDN, or a placeholder when it has none."""
        monkeypatch.setattr(socket, "getfqdn", lambda: fqdn)
        assert Settings.from_env({}).helo_name == helo


class TestParsing:
    """Each CHECKER_* variable is parsed into its field's type."""

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param("192.0.2.53", (Nameserver("192.0.2.53", 53),), id="ipv4"),
            pytest.param("192.0.2.53:5353", (Nameserver("192.0.2.53", 5353),), id="ipv4-port"),
            pytest.param("2001:db8::53", (Nameserver("2001:db8::53", 53),), id="ipv6"),
            pytest.param("[2001:db8::53]", (Nameserver("2001:db8::53", 53),), id="ipv6-brackets"),
            pytest.param(
                "[2001:db8::53]:5353", (Nameserver("2001:db8::53", 5353),), id="ipv6-port"
            ),
            pytest.param(
                "127.0.0.1:5353, [::1]:5354,192.0.2.1",
                (
                    Nameserver("127.0.0.1", 5353),
                    Nameserver("::1", 5354),
                    Nameserver("192.0.2.1", 53),
                ),
                id="list",
            ),
            pytest.param("192.0.2.53,,", (Nameserver("192.0.2.53", 53),), id="empty-items"),
        ],
    )
    def test_nameservers(self, raw: str, expected: tuple[Nameserver, ...]) -> None:
        """Name servers are `ip`, `ip:port` or `[v6]:port`, comma-separated, in order."""
        assert _from_env(nameservers=raw).nameservers == expected

    def test_allow_networks(self) -> None:
        """Allowed networks are CIDRs; host bits are tolerated and cleared."""
        s = _from_env(allow_networks="127.0.0.0/8, ::1/128,10.1.2.3/16,192.0.2.7")
        assert s.allow_networks == (
            ipaddress.ip_network("127.0.0.0/8"),
            ipaddress.ip_network("::1/128"),
            ipaddress.ip_network("10.1.0.0/16"),
            ipaddress.ip_network("192.0.2.7/32"),
        )

    def test_allow_special_use(self) -> None:
        """Special-use suffixes are trimmed, lower-cased and stripped of dots."""
        assert _from_env(allow_special_use=" Test., .example ,").allow_special_use == (
            "test",
            "example",
        )

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("true", True),
            ("TRUE", True),
            ("1", True),
            ("yes", True),
            ("On", True),
            ("false", False),
            ("False", False),
            ("0", False),
            ("no", False),
            ("off", False),
        ],
    )
    @pytest.mark.parametrize("name", ["require_verified", "auth", "metrics_public"])
    def test_booleans(self, name: str, raw: str, expected: bool) -> None:
        """Boolean variables accept the usual spellings in any case."""
        assert getattr(_from_env(**{name: raw}), name) is expected

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [("1.0", "1.0"), ("1.3", "1.3"), ("TLSv1.3", "1.3"), ("tls1.2", "1.2"), ("TLSv1.1", "1.1")],
    )
    def test_min_tls(self, raw: str, expected: str) -> None:
        """The minimum TLS version is a number, optionally written like OpenSSL's names."""
        assert _from_env(min_tls=raw).min_tls == expected

    @pytest.mark.parametrize(
        ("name", "raw", "expected"),
        [
            ("host", "0.0.0.0", "0.0.0.0"),
            ("port", "9090", 9090),
            ("smtp_port", " 2525 ", 2525),
            ("helo_name", "checker.example.org", "checker.example.org"),
            ("request_wait", "2.5", 2.5),
            ("dns_timeout", "0.25", 0.25),
            ("connect_timeout", "3", 3.0),
            ("read_timeout", "7.5", 7.5),
            ("probe_deadline", "20", 20.0),
            ("max_probes", "4", 4),
            ("max_mx", "2", 2),
            ("max_addresses_per_mx", "1", 1),
            ("probe_ttl", "600", 600.0),
            ("probe_failure_ttl", "60.5", 60.5),
            ("dns_min_ttl", "1", 1.0),
            ("dns_max_ttl", "86400", 86400.0),
            ("dns_error_ttl", "5", 5.0),
            ("cache_size", "10", 10),
            ("ca_file", "/etc/ssl/extra.pem", Path("/etc/ssl/extra.pem")),
            ("db", "/srv/mailpreflight/checker.db", Path("/srv/mailpreflight/checker.db")),
            ("log_format", "json", "json"),
            ("log_level", "DEBUG", "DEBUG"),
            ("max_recipients", "50", 50),
            ("secret_key_file", "/run/secrets/key", Path("/run/secrets/key")),
            ("auth_code_ttl", "120", 120.0),
            ("rate_limit", "2.5", 2.5),
            ("rate_burst", "5", 5),
            ("max_concurrent_checks", "3", 3),
            ("max_body_bytes", "65536", 65536),
            ("body_timeout", "1.5", 1.5),
            ("event_loop", "uvloop", "uvloop"),
            ("event_loop", "asyncio", "asyncio"),
        ],
    )
    def test_scalar_fields(self, name: str, raw: str, expected: Any) -> None:
        """Integers, floats, paths and strings are parsed into their field's type."""
        value = getattr(_from_env(**{name: raw}), name)
        assert value == expected
        assert type(value) is type(expected)

    @pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
    def test_auth_off_on_loopback(self, host: str) -> None:
        """Authentication may be switched off when the service listens on loopback only."""
        assert _from_env(auth="off", host=host).auth is False


class TestErrors:
    """A value that cannot be used raises SettingsError naming its variable."""

    @pytest.mark.parametrize(
        ("variables", "named"),
        [
            pytest.param({"port": "http"}, "CHECKER_PORT", id="port-not-int"),
            pytest.param({"port": "0"}, "CHECKER_PORT", id="port-zero"),
            pytest.param({"port": "65536"}, "CHECKER_PORT", id="port-too-big"),
            pytest.param({"smtp_port": "-25"}, "CHECKER_SMTP_PORT", id="smtp-port-negative"),
            pytest.param({"nameservers": "192.0.2.1:99999"}, "CHECKER_NAMESERVERS", id="ns-port"),
            pytest.param({"nameservers": "192.0.2.1:0"}, "CHECKER_NAMESERVERS", id="ns-port-0"),
            pytest.param({"nameservers": "192.0.2.1:"}, "CHECKER_NAMESERVERS", id="ns-no-port"),
            pytest.param({"nameservers": "192.0.2.1:dns"}, "CHECKER_NAMESERVERS", id="ns-port-x"),
            pytest.param({"nameservers": "[::1]:"}, "CHECKER_NAMESERVERS", id="ns-v6-no-port"),
            pytest.param({"nameservers": "[::1]:70000"}, "CHECKER_NAMESERVERS", id="ns-v6-port"),
            pytest.param({"nameservers": "dns.google"}, "CHECKER_NAMESERVERS", id="ns-name"),
            pytest.param({"nameservers": "999.1.1.1"}, "CHECKER_NAMESERVERS", id="ns-bad-ip"),
            pytest.param(
                {"nameservers": "192.0.2.1,bogus"}, "CHECKER_NAMESERVERS", id="ns-one-bad"
            ),
            pytest.param(
                {"allow_networks": "10.0.0.0/33"}, "CHECKER_ALLOW_NETWORKS", id="cidr-prefix"
            ),
            pytest.param({"allow_networks": "intranet"}, "CHECKER_ALLOW_NETWORKS", id="cidr-name"),
            pytest.param({"auth": "maybe"}, "CHECKER_AUTH", id="bool-auth"),
            pytest.param({"require_verified": "2"}, "CHECKER_REQUIRE_VERIFIED", id="bool-require"),
            pytest.param({"min_tls": "1.4"}, "CHECKER_MIN_TLS", id="min-tls-1.4"),
            pytest.param({"min_tls": "TLSv2"}, "CHECKER_MIN_TLS", id="min-tls-v2"),
            pytest.param({"min_tls": "SSLv3"}, "CHECKER_MIN_TLS", id="min-tls-ssl"),
            pytest.param({"log_format": "xml"}, "CHECKER_LOG_FORMAT", id="log-format"),
            pytest.param({"event_loop": "trio"}, "CHECKER_EVENT_LOOP", id="event-loop"),
            pytest.param({"auth": "off", "host": "0.0.0.0"}, "CHECKER_AUTH", id="auth-off-any"),
            pytest.param({"auth": "off", "host": "192.0.2.5"}, "CHECKER_AUTH", id="auth-off-ip"),
            pytest.param(
                {"auth": "off", "host": "example.com"}, "CHECKER_AUTH", id="auth-off-name"
            ),
            pytest.param({"request_wait": "0"}, "CHECKER_REQUEST_WAIT", id="wait-zero"),
            pytest.param({"dns_timeout": "0"}, "CHECKER_DNS_TIMEOUT", id="dns-timeout-zero"),
            pytest.param(
                {"connect_timeout": "-1"}, "CHECKER_CONNECT_TIMEOUT", id="connect-negative"
            ),
            pytest.param({"read_timeout": "0.0"}, "CHECKER_READ_TIMEOUT", id="read-timeout-zero"),
            pytest.param({"probe_deadline": "0"}, "CHECKER_PROBE_DEADLINE", id="deadline-zero"),
            pytest.param({"dns_timeout": "soon"}, "CHECKER_DNS_TIMEOUT", id="float-not-number"),
            pytest.param({"dns_timeout": "nan"}, "CHECKER_DNS_TIMEOUT", id="float-nan"),
            pytest.param({"request_wait": "inf"}, "CHECKER_REQUEST_WAIT", id="float-inf"),
            pytest.param({"dns_min_ttl": "nan"}, "CHECKER_DNS_MIN_TTL", id="ttl-nan"),
            pytest.param({"probe_ttl": "-inf"}, "CHECKER_PROBE_TTL", id="ttl-minus-inf"),
            pytest.param({"auth_code_ttl": "0"}, "CHECKER_AUTH_CODE_TTL", id="code-ttl-zero"),
            pytest.param({"rate_burst": "0"}, "CHECKER_RATE_BURST", id="burst-zero"),
            pytest.param(
                {"max_concurrent_checks": "0"}, "CHECKER_MAX_CONCURRENT_CHECKS", id="checks-zero"
            ),
            pytest.param({"max_body_bytes": "0"}, "CHECKER_MAX_BODY_BYTES", id="body-zero"),
            pytest.param({"body_timeout": "0"}, "CHECKER_BODY_TIMEOUT", id="body-timeout-zero"),
            pytest.param({"max_recipients": "0"}, "CHECKER_MAX_RECIPIENTS", id="recipients-zero"),
            pytest.param({"cache_size": "-1"}, "CHECKER_CACHE_SIZE", id="cache-size-negative"),
            pytest.param({"metrics_public": "public"}, "CHECKER_METRICS_PUBLIC", id="bool-metrics"),
            pytest.param({"max_probes": "0"}, "CHECKER_MAX_PROBES", id="max-probes-zero"),
            pytest.param({"max_probes": "1.5"}, "CHECKER_MAX_PROBES", id="int-not-integer"),
            pytest.param({"max_mx": "0"}, "CHECKER_MAX_MX", id="max-mx-zero"),
            pytest.param(
                {"max_addresses_per_mx": "0"},
                "CHECKER_MAX_ADDRESSES_PER_MX",
                id="max-addresses-zero",
            ),
            pytest.param(
                {"dns_min_ttl": "600", "dns_max_ttl": "60"}, "CHECKER_DNS_MIN_TTL", id="ttl-order"
            ),
            pytest.param({"dns_min_ttl": "7200"}, "CHECKER_DNS_MIN_TTL", id="min-over-default"),
        ],
    )
    def test_bad_value(self, variables: dict[str, str], named: str) -> None:
        """The error message names the offending variable."""
        with pytest.raises(SettingsError, match=named):
            _from_env(**variables)

    def test_settings_error_is_a_value_error(self) -> None:
        """SettingsError is a ValueError, and the parser's own exception is not chained."""
        with pytest.raises(ValueError, match="CHECKER_PORT") as info:
            _from_env(port="http")
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__ is True

    def test_equal_ttls_allowed(self) -> None:
        """A minimum DNS lifetime equal to the maximum is allowed."""
        s = _from_env(dns_min_ttl="60", dns_max_ttl="60")
        assert (s.dns_min_ttl, s.dns_max_ttl) == (60.0, 60.0)


class TestNameserverSyntax:
    """Bracketed IPv6 nameservers take only `:port` after the bracket."""

    @pytest.mark.parametrize("raw", ["[::1]garbage", "[::1]53", "[::1]x:53"])
    def test_junk_after_bracket(self, raw: str) -> None:
        """Text after `]` that is not `:port` is refused."""
        with pytest.raises(SettingsError, match="CHECKER_NAMESERVERS"):
            Settings.from_env({"CHECKER_HELO_NAME": "a.example", "CHECKER_NAMESERVERS": raw})

    @pytest.mark.parametrize(
        ("name", "value"),
        [("CHECKER_LOG_LEVEL", "LOUD"), ("CHECKER_PROBE_TTL", "-1"), ("CHECKER_DNS_MIN_TTL", "-5")],
    )
    def test_more_refusals(self, name: str, value: str) -> None:
        """Unknown log levels and negative lifetimes are refused, naming the variable."""
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({"CHECKER_HELO_NAME": "a.example", name: value})

    def test_tlsv1_is_one_point_oh(self) -> None:
        """CHECKER_MIN_TLS accepts OpenSSL's name for TLS 1.0."""
        env = {"CHECKER_HELO_NAME": "a.example", "CHECKER_MIN_TLS": "TLSv1"}
        assert Settings.from_env(env).min_tls == "1.0"
