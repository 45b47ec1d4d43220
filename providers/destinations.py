"""Where webhook and Slack steps may send: nowhere inside the private network.

A destination is refused when its host is (or resolves to) a loopback, private, link-local, multicast,
reserved, unspecified or otherwise non-global address — however it is spelt (``127.1``, ``2130706433``,
``0x7f000001``, ``017700000001``, ``[::ffff:127.0.0.1]``, ``localhost``). Two checks:

* :func:`check_destination` at save time, on the URL as written (literal addresses and ``localhost``; no DNS):
  raises :class:`automations.errors.ValidationError`, for the documents and web layers to call;
* :class:`PinnedTransport` at send time: resolves the host once, checks every address, and connects to the
  checked address itself (the Host header and TLS SNI/certificate check keep the name), so a DNS answer that
  changes between check and connect (rebinding) cannot redirect the request.

The operator's allowlist (``PUNCTUAL_OUTBOUND_ALLOW``: CIDRs and host names) lets on-premise targets through.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from automations.errors import PermanentProviderError, ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


@dataclass(frozen=True)
class Allowlist:
    """Private destinations the operator allows anyway: networks and exact host names."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        networks, hosts = [], set()
        for entry in (e.strip().lower() for e in entries):
            if not entry:
                continue
            address = literal_address(entry.strip("[]")) if "/" not in entry else None
            if "/" in entry or address is not None:
                networks.append(ipaddress.ip_network(entry if "/" in entry else str(address), strict=False))
            else:
                hosts.add(entry.rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


NOTHING_ALLOWED = Allowlist()


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is one in any spelling a resolver accepts, else None."""
    host = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if "%" in host:  # a scoped IPv6 address (fe80::1%eth0)
        try:
            return ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return None
    try:
        # inet_aton takes the legacy forms getaddrinfo also takes: 127.1, 0x7f000001, 2130706433, 0177.0.0.1.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return forbidden_reason(address.ipv4_mapped)
    for attribute, reason in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"),
                              ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                              ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(address, attribute):
            return f"a {reason} address"
    if not address.is_global:
        return "not a public address"
    return None


def _host_of(url: str) -> tuple[str, int]:
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValidationError.single("url", f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError.single("url", "must be an http or https URL")
    if not parts.hostname:
        raise ValidationError.single("url", "has no host")
    return parts.hostname, port or (443 if parts.scheme.lower() == "https" else 80)


def check_destination(url: str, allow: Allowlist = NOTHING_ALLOWED) -> None:
    """Refuse (``ValidationError`` on ``url``) a URL whose host is written as a private or local address or
    name. Names are not resolved here (they may not resolve yet, or resolve differently later): the send-time
    check does that."""
    host, _ = _host_of(url)
    if allow.allows_host(host):
        return
    name = host.lower().rstrip(".")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        raise ValidationError.single("url", f"host {host!r} is this machine; webhooks may only reach public hosts")
    address = literal_address(host)
    if address is not None and not allow.allows_address(address):
        reason = forbidden_reason(address)
        if reason:
            raise ValidationError.single("url", f"host {host!r} is {reason}; webhooks may only reach public hosts")


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_checked(host: str, port: int, allow: Allowlist = NOTHING_ALLOWED,
                    resolver: Resolver = system_resolver) -> str:
    """The address to connect to for ``host``: every address it resolves to must be public (or allowed).
    Raises PermanentProviderError (``provider_code="destination_refused"``) otherwise."""
    try:
        check_destination(f"http://{host if ':' not in host else f'[{host}]'}:{port}/", allow)
    except ValidationError as exc:
        raise PermanentProviderError(f"destination refused: {exc.fields['url'][0]}",
                                     provider_code="destination_refused") from None
    literal = literal_address(host)
    if literal is not None:
        return str(literal)
    try:
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(host, port)]
    except OSError as exc:
        raise PermanentProviderError(f"destination refused: host {host!r} does not resolve ({exc.strerror or exc})",
                                     provider_code="destination_unresolved") from None
    if not addresses:
        raise PermanentProviderError(f"destination refused: host {host!r} does not resolve",
                                     provider_code="destination_unresolved")
    if not allow.allows_host(host):
        for address in addresses:
            reason = None if allow.allows_address(address) else forbidden_reason(address)
            if reason:
                raise PermanentProviderError(f"destination refused: host {host!r} resolves to {reason}",
                                             provider_code="destination_refused")
    return str(addresses[0])


class PinnedTransport(httpx.BaseTransport):
    """An httpx transport that connects only to a checked address: resolve, check, then send the request to
    that IP with the original Host header and TLS server name, so DNS rebinding cannot switch the target."""

    def __init__(self, allow: Allowlist = NOTHING_ALLOWED, *, resolver: Resolver = system_resolver,
                 inner: httpx.BaseTransport | None = None) -> None:
        self.allow = allow
        self.resolver = resolver
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        address = resolve_checked(host, port, self.allow, self.resolver)
        if address != host:
            request.url = request.url.copy_with(host=address)
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
        # The Host header was set from the original URL when the request was built; it stays.
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
