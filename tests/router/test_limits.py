"""router/limits.py: the client's address behind proxies, counts per key, attempts over time."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from router.limits import Attempts, Counts, TrustedProxies, client_key, forwarded_chain, is_local, peer_host

LOOPBACK = TrustedProxies(["127.0.0.1", "::1"])


@pytest.mark.parametrize(("peer", "host"), [
    ("tcp4:203.0.113.7:51234", "203.0.113.7"),
    ("tcp6:2001:db8::1:51234", "2001:db8::1"),
    ("tcp6:[2001:db8::1]:51234", "2001:db8::1"),
    ("unix:/run/djwamp.sock", "unix:/run/djwamp.sock"),
    (None, "unknown"),
    ("", "unknown"),
])
def test_peer_host(peer, host):
    assert peer_host(peer) == host


def test_without_a_trusted_proxy_the_peer_is_the_client_whatever_it_claims():
    chain = forwarded_chain("198.51.100.1, 198.51.100.2", "203.0.113.7")
    assert client_key(chain, LOOPBACK) == "203.0.113.7"
    assert client_key(chain, TrustedProxies()) == "203.0.113.7"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client():
    # nginx on the same machine appends the browser's address; what the browser wrote is left of it
    chain = forwarded_chain(["10.9.9.9, 198.51.100.4"], "127.0.0.1")
    assert client_key(chain, LOOPBACK) == "198.51.100.4"
    # two proxies, both trusted: still the first untrusted hop from the right
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    assert client_key(forwarded_chain("198.51.100.4, 10.1.2.3", "127.0.0.1"), trusted) == "198.51.100.4"


def test_a_trusted_peer_without_forwarding_is_the_client():
    assert client_key(forwarded_chain(None, "127.0.0.1"), LOOPBACK) == "127.0.0.1"


def test_ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4():
    assert client_key(["2001:db8:1:2:aaaa::1"], LOOPBACK) == "2001:db8:1:2::/64"
    assert client_key(["2001:db8:1:2:bbbb::9"], LOOPBACK) == "2001:db8:1:2::/64"
    assert client_key(["::ffff:203.0.113.7"], LOOPBACK) == "203.0.113.7"


def test_garbage_from_a_trusted_proxy_is_a_bounded_key_of_its_own():
    key = client_key(forwarded_chain("x" * 500, "127.0.0.1"), LOOPBACK)
    assert key == "x" * 64


def test_trusted_proxies_take_networks_and_refuse_nonsense():
    trusted = TrustedProxies(["10.0.0.0/8", " ", "::1"])
    assert "10.200.0.1" in trusted and "::1" in trusted and "11.0.0.1" not in trusted
    assert "not an address" not in trusted
    assert not TrustedProxies()
    with pytest.raises(ValueError):
        TrustedProxies(["10.0.0.0/33"])


def test_counts_cap_each_key_and_forget_keys_that_hold_nothing():
    counts = Counts(2)
    assert counts.take("a") and counts.take("a") and not counts.take("a")
    assert counts.take("b")
    assert counts.held("a") == 2
    counts.give_back("a")
    assert counts.take("a")
    for _ in range(3):
        counts.give_back("a")
        counts.give_back("b")
    assert len(counts) == 0 and counts.held("a") == 0


def test_counts_without_a_limit():
    counts = Counts(0)
    assert all(counts.take("a") for _ in range(1000))


def test_attempts_spend_a_burst_then_refill_at_the_rate():
    clock = Clock()
    attempts = Attempts(burst=3, per_minute=6, clock=clock)  # one back every 10 s
    for _ in range(3):
        assert attempts.allowed("a")
        attempts.spend("a")
    assert not attempts.allowed("a")
    assert attempts.retry_after("a") == pytest.approx(10.0)
    assert attempts.allowed("b")  # another key is not affected
    clock.advance(9.9)
    assert not attempts.allowed("a")
    clock.advance(0.2)
    assert attempts.allowed("a")
    clock.advance(3600)
    attempts.spend("a")
    assert attempts.allowed("a")  # refilled to the burst, not beyond it: 2 left
    attempts.spend("a")
    attempts.spend("a")
    assert not attempts.allowed("a")


def test_attempts_keep_a_bounded_table():
    clock = Clock()
    attempts = Attempts(burst=1, per_minute=1, clock=clock, max_keys=100)
    for i in range(10_000):
        attempts.spend(f"198.51.{i // 256}.{i % 256}")
    assert len(attempts) == 100
    assert not attempts.allowed("198.51.39.15")  # the most recent are kept
    assert attempts.allowed("198.51.0.0")       # the oldest forgotten: a full bucket again


def test_attempts_off():
    attempts = Attempts(burst=0, per_minute=0, clock=Clock())
    attempts.spend("a")
    assert attempts.allowed("a") and len(attempts) == 0


def test_the_node_always_trusts_its_own_machine_and_does_not_limit_it():
    trusted = TrustedProxies.for_node([])
    assert "127.0.0.1" in trusted and "127.8.0.1" in trusted and "::1" in trusted
    assert client_key(forwarded_chain("203.0.113.9", "127.0.0.1"), trusted) == "203.0.113.9"
    assert is_local(client_key(forwarded_chain(None, "127.0.0.1"), trusted))
    assert is_local(client_key(["::1"], trusted))
    assert is_local("unix:/run/x.sock")
    assert not is_local("203.0.113.9") and not is_local("2001:db8::/64") and not is_local("unknown")
