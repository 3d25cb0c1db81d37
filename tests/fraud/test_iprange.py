from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraud.iprange import IpRanges

CONFIG = Path(__file__).resolve().parents[2] / "config" / "datacenter"


@pytest.fixture
def ranges() -> IpRanges:
    return IpRanges(["10.0.0.0/8", "192.168.1.0/24", "203.0.113.7", "2001:db8::/32", "::1/128"])


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("10.0.0.0", True),
        ("10.255.255.255", True),
        ("9.255.255.255", False),
        ("11.0.0.0", False),
        ("192.168.1.0", True),
        ("192.168.1.255", True),
        ("192.168.0.255", False),
        ("192.168.2.0", False),
        ("203.0.113.7", True),
        ("203.0.113.6", False),
        ("203.0.113.8", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("2001:db8::", True),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", True),
        ("2001:db9::", False),
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", False),
        ("::1", True),
        ("::2", False),
        ("2001:DB8::ABCD", True),
    ],
)
def test_membership_and_edges(ranges: IpRanges, ip: str, expected: bool) -> None:
    assert ranges.contains(ip) is expected


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4(ranges: IpRanges) -> None:
    assert ranges.contains("::ffff:10.1.2.3")
    assert ranges.contains("::ffff:a01:203")  # the same address in hex
    assert not ranges.contains("::ffff:11.1.2.3")
    # IPv4 ranges do not leak into the IPv6 table: ::a01:203 is not a mapped address.
    assert not ranges.contains("::a01:203")


@pytest.mark.parametrize(
    "junk",
    [
        "",
        " ",
        "999.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "10.0.0.1 ",
        " 10.0.0.1",
        "010.0.0.1",
        "10.0.0.1/8",
        "::g",
        "2001:db8:::1",
        "fe80::1%eth0",
        "10.0.0.1\x00",
        "10.0.0.1" * 1280,
        "x" * 10_240,
    ],
)
def test_garbage_is_false_never_an_error(ranges: IpRanges, junk: str) -> None:
    assert ranges.contains(junk) is False


def test_non_strings_are_false(ranges: IpRanges) -> None:
    assert ranges.contains(None) is False  # type: ignore[arg-type]
    assert ranges.contains(b"10.0.0.1") is False  # type: ignore[arg-type]
    assert 167772161 not in ranges
    assert "10.0.0.1" in ranges


def test_overlapping_and_touching_ranges_are_merged() -> None:
    merged = IpRanges(
        ["10.0.0.0/24", "10.0.0.128/25", "10.0.1.0/24", "10.0.0.0/23", "10.0.3.0/24", "::/127"]
    )
    # 10.0.0.0/23 swallows the first three; 10.0.3.0/24 stays apart (10.0.2.0/24 is a gap).
    assert len(merged) == 3
    assert merged.contains("10.0.1.255")
    assert not merged.contains("10.0.2.0")
    assert merged.contains("10.0.3.0")
    assert IpRanges(["10.0.0.0/25", "10.0.0.128/25"]).__len__() == 1


def test_empty_set_contains_nothing() -> None:
    empty = IpRanges()
    assert len(empty) == 0
    assert not empty.contains("1.2.3.4")
    assert not empty.contains("::1")


def test_from_files_reads_comments_blanks_and_both_families(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("# provider A\n\n198.51.100.0/24  # a comment\n  2001:db8::/48\n")
    b = tmp_path / "b.txt"
    b.write_text("198.51.100.128/25\n192.0.2.1\n")
    loaded = IpRanges.from_files([a, str(b)])
    assert len(loaded) == 3
    assert loaded.contains("198.51.100.200")
    assert loaded.contains("192.0.2.1")
    assert not loaded.contains("192.0.2.2")
    assert loaded.contains("2001:db8:0:ffff::1")
    assert not loaded.contains("2001:db8:1::1")


def test_from_files_names_the_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("10.0.0.0/8\nnot-a-network\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2"):
        IpRanges.from_files([bad])


def test_shipped_datacenter_lists_load() -> None:
    loaded = IpRanges.from_files(sorted(CONFIG.glob("*.txt")))
    assert len(loaded) > 50
    for ip in ("3.80.0.1", "34.64.0.1", "40.64.0.1", "2600:1f00::1", "2a01:4f8::1"):
        assert loaded.contains(ip), ip
    for ip in ("8.8.8.8", "1.1.1.1", "192.168.1.1", "81.2.69.160", "2001:db8::1"):
        assert not loaded.contains(ip), ip


# --- property: agrees with ipaddress on random networks and addresses -------------------

_v4_net = st.builds(
    lambda addr, prefix: ipaddress.ip_network((addr, prefix), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
_v6_net = st.builds(
    lambda addr, prefix: ipaddress.ip_network((addr, prefix), strict=False),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
)
_v4_addr = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
_v6_addr = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


def _brute_force(nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network], ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in nets)


@given(
    nets=st.lists(st.one_of(_v4_net, _v6_net), max_size=20),
    addrs=st.lists(st.one_of(_v4_addr, _v6_addr), min_size=1, max_size=20),
)
def test_contains_equals_brute_force(
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
    addrs: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    table = IpRanges(str(n) for n in nets)
    # Probe the random addresses and every network's first and last address and neighbours.
    probes = [str(a) for a in addrs]
    for net in nets:
        family = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
        first, last = int(net.network_address), int(net.broadcast_address)
        for value in (first - 1, first, last, last + 1):
            if 0 <= value < 2**net.max_prefixlen:
                probes.append(str(family(value)))
    for ip in probes:
        assert table.contains(ip) == _brute_force(nets, ip), ip
