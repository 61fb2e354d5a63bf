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
- keeps connections open in one pool per process (httpcore's, which httpx is built on), each
  pinned to the address checked when it was opened, so a batch of sends to one receiver
  costs one handshake.

`OUTBOUND_ALLOWED_HOSTS` (setting, from the environment: host names or CIDRs, comma-separated)
lets named hosts or networks through, for tests and on-premises receivers.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
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


class _PinningBackend(httpcore.SyncBackend):
    """Opens each pooled connection to an address checked just before (outbound_address), so
    a connection stays pinned to it for its life; TLS still names (SNI) and verifies the host,
    since httpcore passes the URL's host to start_tls, not the address connected to."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = _checked_address(host, port)
        return super().connect_tcp(
            str(address),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )


MAX_RESPONSE_BYTES = 64 * 1024
MAX_CONNECTIONS, MAX_KEEPALIVE_CONNECTIONS, KEEPALIVE_SECONDS = 64, 32, 30.0
# httpcore's errors: a request that could not be completed, worth another try.
_REQUEST_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ConnectionNotAvailable,
    httpcore.UnsupportedProtocol,
)

_pool_lock = threading.Lock()
_pool: tuple[tuple[Any, ...], httpcore.ConnectionPool] | None = None


def _guarded_pool() -> httpcore.ConnectionPool:
    """The process's connection pool, every connection opened through the pinning backend.
    httpcore's pool directly, not an httpx.Client over it: the client's request and response
    models cost as much CPU per request as the pool itself, and add nothing a guarded POST
    uses (no proxy from the environment, no redirect, no cookie, no decompression). Keyed by
    the process and the settings it checks against, so a fork or a changed allow-list gets
    fresh connections, never one checked under other rules."""
    global _pool
    key = (os.getpid(), tuple(settings.OUTBOUND_ALLOWED_HOSTS))
    with _pool_lock:
        if _pool is None or _pool[0] != key:
            if _pool is not None and _pool[0][0] == key[0]:
                _pool[1].close()
            _pool = (
                key,
                httpcore.ConnectionPool(
                    ssl_context=httpx.create_ssl_context(trust_env=False),
                    max_connections=MAX_CONNECTIONS,
                    max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
                    keepalive_expiry=KEEPALIVE_SECONDS,
                    network_backend=_PinningBackend(),
                ),
            )
        return _pool[1]


@functools.lru_cache(maxsize=256)
def _request_url(url: str) -> tuple[httpcore.URL, bytes]:
    """The URL as the pool takes it (host IDNA-encoded, path percent-encoded, as httpx
    does) and its Host header (an IPv6 address in brackets), after the form checks; a batch
    sends to one URL, so it is parsed once."""
    _target(url)  # the URL's form; its addresses are checked when a connection opens
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise OutboundRefused(f"not a URL: {error}") from None
    pool_url = httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    return pool_url, parsed.netloc


def _response_headers(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    # Lower-case names; a repeated header's values joined, as HTTP allows.
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def outbound_post(
    url: str, *, body: bytes, headers: Mapping[str, str], timeout: float | None = None
) -> OutboundResponse:
    """POST `body` to `url` through the guard, on a pooled keep-alive connection (thread-safe:
    senders share the pool). Raises OutboundRefused (never retry) or OutboundError (worth
    retrying); any HTTP status is returned, redirects included."""
    target, host = _request_url(url)
    seconds = timeout if timeout is not None else settings.OUTBOUND_TIMEOUT
    limits = {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}
    try:
        with _guarded_pool().stream(
            "POST",
            target,
            content=body,
            headers=[("Host", host), *headers.items()],
            extensions={"timeout": limits},
        ) as response:
            answer = bytearray()
            for chunk in response.iter_stream():
                answer += chunk
                if len(answer) >= MAX_RESPONSE_BYTES:
                    break
            return OutboundResponse(
                response.status,
                _response_headers(response.headers),
                bytes(answer[:MAX_RESPONSE_BYTES]),
            )
    except _REQUEST_ERRORS as error:
        raise OutboundError(f"{type(error).__name__}: {error}") from None
