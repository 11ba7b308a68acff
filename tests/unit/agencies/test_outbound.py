"""Webhook targets: only public addresses, resolved once and pinned (kuekan.agencies.outbound)."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from kuekan.agencies import outbound


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.100.100.200",  # shared address space (Alibaba metadata, carrier NAT)
    "fd00:ec2::254",  # AWS metadata over IPv6 (unique local)
    "fe80::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::", "240.0.0.1",  # noqa: S104
    "255.255.255.255",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1",  # IPv4-mapped
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not outbound.address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "203.0.114.1", "2001:4860:4860::8888",
                                     "64:ff9b::808:808"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert outbound.address_allowed(ipaddress.ip_address(address))


def test_an_exempted_network_is_allowed_and_nothing_else() -> None:
    local = outbound.networks(["127.0.0.0/8"])
    assert outbound.address_allowed(ipaddress.ip_address("127.0.0.1"), local)
    assert not outbound.address_allowed(ipaddress.ip_address("::1"), local)
    assert not outbound.address_allowed(ipaddress.ip_address("10.0.0.1"), local)


async def test_pin_connects_to_the_checked_address_and_keeps_the_name_for_host_and_tls() -> None:
    pinned = await outbound.pin("https://localhost:8443/hook?x=1",
                                ["127.0.0.0/8", "::1/128"])
    url = httpx.URL(pinned.url)
    assert ipaddress.ip_address(url.host).is_loopback
    assert (url.scheme, url.port, url.path, url.query) == ("https", 8443, "/hook", b"x=1")
    assert pinned.host_header == "localhost:8443"
    assert pinned.sni_hostname == "localhost"


@pytest.mark.parametrize("url", [
    "https://localhost/hook",  # resolves to loopback, not exempted here
    "https://127.0.0.1/hook", "https://[::1]/hook", "https://169.254.169.254/latest/meta-data",
    "https://host.invalid/hook",  # does not resolve
    "ftp://example.org/x", "https:///nohost",
])
async def test_pin_refuses_urls_that_do_not_reach_a_public_address(url: str) -> None:
    with pytest.raises(outbound.Refused):
        await outbound.pin(url)
