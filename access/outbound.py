"""The one guarded HTTP client for every request the platform makes to a URL that staff or API
clients configured (campaign webhooks and push providers, segment webhooks).

Such a URL must not become a way into the platform's own network (SSRF). So a request:
- accepts only http and https URLs without credentials;
- resolves the host itself and refuses it when any address it resolves to is not a public one:
  loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT (100.64/10),
  multicast, reserved, unspecified, and IPv6 forms of them (mapped ::ffff:a.b.c.d, 6to4,
  NAT64 and unique-local); decimal, octal or hex spellings of an address resolve to the same
  address and are refused the same way;
- connects to the address it checked (pinned), sending the host name in `Host` and TLS SNI and
  verifying the certificate against the name, so a DNS answer that changes between the check
  and the connection (DNS rebinding) changes nothing;
- follows no redirect (a 3xx is returned as it is) and ignores proxy environment variables;
- keeps connections open in one pool per process, each pinned to the address checked when it
  was opened, so a batch of sends to one receiver costs one handshake.

`OUTBOUND_ALLOWED_HOSTS` (setting, from the environment: host names or CIDRs, comma-separated)
lets named hosts or networks through, for tests and on-premises receivers.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import os
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Not caught by `is_global` on every Python version, so named outright.
_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/3",
        "::/127",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


class OutboundRefused(ValueError):
    """The URL is not one the platform may call (the message says why)."""


class OutboundError(OSError):
    """The request could not be completed (connection, TLS or timeout)."""


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


def _allowed(host: str, address: IPAddress) -> bool:
    for entry in getattr(settings, "OUTBOUND_ALLOWED_HOSTS", ()):
        if entry.lower() == host.lower():
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name, not a network
    return False


def address_blocked(address: IPAddress) -> bool:
    """Whether this address is not a public one (see the module docstring)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None and address_blocked(embedded):
            return True
    if any(
        address in network for network in _BLOCKED_NETWORKS if network.version == address.version
    ):
        return True
    return not address.is_global


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise OutboundError(f"cannot resolve {host}: {error}") from None
    # An IPv6 answer may carry a zone ("fe80::1%eth0"), which ip_address does not take.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str


# Longer URLs are refused: no receiver needs one, and they are stored in 2,000-character fields.
MAX_URL_LENGTH = 2000


_PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
# Every URL the platform may call has this form (the API schemas document it, URL_SCHEMA): http
# or https, printable ASCII (non-ASCII is percent-encoded, hosts in IDNA), a host name or IPv4
# address without user info, a port up to 65535. IPv6 literals are not taken (give the name).
URL_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~!$&'()*+,;=%-]+(?::{_PORT}?)?(?:[/?#][!-~]*)?\Z"
)
URL_SCHEMA = {"type": "string", "maxLength": MAX_URL_LENGTH, "pattern": URL_PATTERN}


def _target(url: str) -> _Target:
    if len(url) > MAX_URL_LENGTH:
        raise OutboundRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise OutboundRefused(f"not a URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused("only http and https URLs are allowed")
    if parts.username or parts.password:
        raise OutboundRefused("URLs may not carry a user name or password")
    host = parts.hostname
    if not host:
        raise OutboundRefused("the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused("the URL's port is not a number from 1 to 65535") from None
    if not re.fullmatch(URL_PATTERN, url):
        raise OutboundRefused(
            "not a URL the platform calls: printable ASCII only (percent-encode the rest), "
            "a host name or IPv4 address (no IPv6 literal)"
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(parts.scheme, host, port, path)


def _checked_address(host: str, port: int) -> IPAddress:
    addresses = _resolve(host, port)
    for address in addresses:
        if address_blocked(address) and not _allowed(host, address):
            raise OutboundRefused(f"{host} resolves to {address}, a private or reserved address")
    return addresses[0]


def outbound_address(url: str) -> tuple[_Target, IPAddress]:
    """Resolve the URL's host and pick the address to connect to; raise OutboundRefused when
    any of its addresses is not allowed, OutboundError when it does not resolve."""
    target = _target(url)
    return target, _checked_address(target.host, target.port)


def outbound_url_validator(url: str) -> None:
    """A form or serializer field's validator: a URL the platform may not call is refused when
    saved (blank is left to the field's own rules)."""
    from django.core.exceptions import ValidationError

    problem = outbound_url_problem(url) if url else None
    if problem:
        raise ValidationError(problem)


def outbound_url_problem(url: str) -> str | None:
    """Why this URL may not be saved, or None. A host that does not resolve (yet) may be saved;
    it is checked again at every request."""
    try:
        outbound_address(url)
    except OutboundRefused as error:
        return str(error)
    except OutboundError:
        return None
    return None


def _pinned_socket(host: str, port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the address of `host` checked just now (see the module), so the
    connection stays pinned to it for its life."""
    address = _checked_address(host, port)
    sock = socket.create_connection((str(address), port), timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = _pinned_socket(self.host, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS over the pinned connection: SNI names the host and the certificate is verified
    against the host, not the address connected to."""

    def __init__(self, host: str, port: int, *, timeout: float, tls: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=tls)
        self.tls = tls

    def connect(self) -> None:
        sock = _pinned_socket(self.host, self.port, self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


Origin = tuple[str, str, int]  # scheme, host (IDNA-encoded), port


class _Pool:
    """Idle keep-alive connections by origin. http.client rather than httpx or httpcore: a
    POST costs a fraction of their CPU (a batch of webhooks is bound by it), and it does
    nothing unasked: no proxy from the environment, no redirect, no cookie. A connection is
    taken by one thread at a time and given back only once its response was read to the end;
    an idle one the server closed (readable: end of stream) or that idled too long is
    dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[Origin, list[tuple[float, http.client.HTTPConnection]]] = {}
        self._tls = httpx.create_ssl_context(trust_env=False)

    def take(self, origin: Origin, timeout: float) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    break
                since, connection = idle.pop()
            if time.monotonic() - since < KEEPALIVE_SECONDS and not _readable(connection):
                connection.timeout = timeout
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
                return connection
            connection.close()
        scheme, host, port = origin
        if scheme == "https":
            return _PinnedHTTPSConnection(host, port, timeout=timeout, tls=self._tls)
        return _PinnedHTTPConnection(host, port, timeout=timeout)

    def give_back(self, origin: Origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if sum(len(held) for held in self._idle.values()) < MAX_KEEPALIVE_CONNECTIONS:
                idle.append((time.monotonic(), connection))
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for held in idle.values():
            for _, connection in held:
                connection.close()


def _readable(connection: http.client.HTTPConnection) -> bool:
    # An idle keep-alive connection has nothing to read unless the server closed it. poll,
    # not select: a worker may hold descriptors past select's limit (1024).
    sock = connection.sock
    if sock is None:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


MAX_RESPONSE_BYTES = 64 * 1024
MAX_KEEPALIVE_CONNECTIONS, KEEPALIVE_SECONDS = 32, 30.0

_pool_lock = threading.Lock()
_pool: tuple[tuple[Any, ...], _Pool] | None = None


def _guarded_pool() -> _Pool:
    """The process's connection pool. Keyed by the process and the settings it checks
    against, so a fork or a changed allow-list gets fresh connections, never one checked
    under other rules."""
    global _pool
    key = (os.getpid(), tuple(settings.OUTBOUND_ALLOWED_HOSTS))
    with _pool_lock:
        if _pool is None or _pool[0] != key:
            if _pool is not None and _pool[0][0] == key[0]:
                _pool[1].close()
            _pool = (key, _Pool())
        return _pool[1]


@functools.lru_cache(maxsize=256)
def _request_target(url: str) -> tuple[Origin, str]:
    """The URL's origin (host IDNA-encoded) and its path and query (percent-encoded), as
    httpx reads them, after the form checks; a batch sends to one URL, so it is read once."""
    _target(url)  # the URL's form; its addresses are checked when a connection opens
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise OutboundRefused(f"not a URL: {error}") from None
    origin = (
        parsed.scheme,
        parsed.raw_host.decode("ascii"),
        parsed.port or _DEFAULT_PORTS[parsed.scheme],
    )
    return origin, parsed.raw_path.decode("ascii")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _response_headers(raw: Sequence[tuple[str, str]]) -> dict[str, str]:
    # Lower-case names; a repeated header's values joined, as HTTP allows.
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def outbound_post(
    url: str, *, body: bytes, headers: Mapping[str, str], timeout: float | None = None
) -> OutboundResponse:
    """POST `body` to `url` through the guard, on a pooled keep-alive connection (thread-safe:
    senders share the pool). Raises OutboundRefused (never retry) or OutboundError (worth
    retrying); any HTTP status is returned, redirects included."""
    origin, path = _request_target(url)
    seconds = timeout if timeout is not None else settings.OUTBOUND_TIMEOUT
    pool = _guarded_pool()
    connection = pool.take(origin, seconds)
    try:
        connection.request("POST", path, body=body, headers=dict(headers))
        response = connection.getresponse()
        answer = response.read(MAX_RESPONSE_BYTES)
    except (OutboundRefused, OutboundError):
        connection.close()
        raise
    except (OSError, http.client.HTTPException) as error:
        connection.close()
        raise OutboundError(f"{type(error).__name__}: {error}") from None
    except BaseException:
        connection.close()
        raise
    # Reused only when the whole response was read and the server keeps the connection open.
    if response.isclosed() and not response.will_close:
        pool.give_back(origin, connection)
    else:
        connection.close()
    return OutboundResponse(response.status, _response_headers(response.getheaders()), answer)
