"""Where a webhook may be sent: public addresses only, resolved once and pinned for the call.

An agency names its webhook URL, and the worker POSTs to it from inside the cluster: without a
check, a URL on 127.0.0.1, a private range, the cloud metadata address (169.254.169.254) or a
cluster service turns the worker into a proxy into our own network (SSRF). So:

- the host is resolved and EVERY address it resolves to must be public (``address_allowed``):
  not loopback, private, link-local, shared (100.64/10, cloud metadata), multicast, reserved
  or unspecified, also when an IPv4 address hides in an IPv6 one (mapped, 6to4, NAT64, Teredo);
- the check runs when the webhook is created (422 ``webhook_url_refused``) and again before
  every delivery, since DNS may change in between (rebinding);
- the delivery connects to the address that was checked (``pin``): the URL's host is replaced
  by the IP, the Host header and the TLS server name (SNI, certificate check) keep the name,
  so a second, different DNS answer cannot be slipped in between the check and the connect.

``webhook_allowed_networks`` (a setting, empty in prod) exempts networks for local fakes: the
dev and test configs allow 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import httpx
import msgspec

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")
RESOLVE_TIMEOUT_S = 5.0


class Refused(Exception):  # noqa: N818 - a verdict, raised to stop the call
    """The URL may not be called; the message says why (safe to show the admin)."""


class Pinned(msgspec.Struct, frozen=True):
    """A checked URL: call ``url`` (host replaced by the address) with these headers and
    request extensions."""

    url: str
    host_header: str
    sni_hostname: str | None


def _embedded_v4(ip: IpAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(ip: IpAddress, allowed: Iterable[ipaddress.IPv4Network
                                                      | ipaddress.IPv6Network] = ()) -> bool:
    """Whether a webhook may connect to ``ip``: a global unicast address, or an exempted one."""
    if any(ip in net for net in allowed if net.version == ip.version):
        return True
    inner = _embedded_v4(ip)
    if inner is not None:  # an IPv4 address carried in IPv6 is judged as itself
        return address_allowed(inner, allowed)
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def networks(cidrs: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(c) for c in cidrs]


async def _resolve(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S)
    except (OSError, TimeoutError):
        raise Refused(f"the host {host} does not resolve") from None
    # The first element of a sockaddr is the address; an IPv6 scope ("fe80::1%eth0") is cut.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def pin(url: str, allowed_cidrs: Iterable[str] = ()) -> Pinned:
    """Resolve ``url``'s host, refuse it unless every address is allowed, pin the first."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise Refused("the URL is not valid") from None
    if u.scheme not in {"https", "http"} or not u.host:
        raise Refused("the URL must be http(s) with a host")
    port = u.port or (443 if u.scheme == "https" else 80)
    addresses = await _resolve(u.host, port)
    allowed = networks(allowed_cidrs)
    if not addresses:
        raise Refused(f"the host {u.host} does not resolve")
    bad = [str(a) for a in addresses if not address_allowed(a, allowed)]
    if bad:
        raise Refused(f"the host {u.host} resolves to a non-public address")
    target = addresses[0]
    host_header = u.host if u.port is None else f"{u.host}:{u.port}"
    if ":" in u.host:
        host_header = f"[{u.host}]" if u.port is None else f"[{u.host}]:{u.port}"
    return Pinned(url=str(u.copy_with(host=str(target))), host_header=host_header,
                  sni_hostname=u.host if u.scheme == "https" else None)
