"""What one client may hold and try: its address, counts per key, and attempts per key over time.

Used by the fallback gateway (sessions per address, per session cookie and in all) and by the
authenticator (WebSocket connections per address, failed authentications per address). Pure:
no WAMP, no Django; the clock is injected, so tests use ``twisted.internet.task.Clock``.

The client's address is the TCP peer unless that peer is a trusted proxy
(``DJWAMP_TRUSTED_PROXIES``, and always the node's own machine: the fallback gateway joins the
router from there on a browser's behalf): then it is the rightmost ``X-Forwarded-For`` entry
that is not a trusted proxy. Entries left of the first untrusted one were written by the client
and are never believed. IPv6 clients are keyed by their /64 (one host usually holds the whole
/64). A client whose address is the node's own machine is not limited (``is_local``): that is a
developer, a test, or a proxy that names nobody.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable, Sequence

__all__ = ["LOOPBACK", "Attempts", "Counts", "TrustedProxies", "client_key", "forwarded_chain", "is_local",
           "peer_host"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: the node's own machine, trusted as a proxy whatever DJWAMP_TRUSTED_PROXIES says
LOOPBACK = ("127.0.0.0/8", "::1")


class TrustedProxies:
    """The addresses whose ``X-Forwarded-For`` is believed (``DJWAMP_TRUSTED_PROXIES``)."""

    def __init__(self, networks: Iterable[str] = ()):
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(n.strip(), strict=False)
                                                   for n in networks if n.strip())

    def __contains__(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    @classmethod
    def for_node(cls, networks: Iterable[str]) -> TrustedProxies:
        """``DJWAMP_TRUSTED_PROXIES`` (``NodeSettings.trusted_proxies``) and the node's own machine."""
        return cls([*LOOPBACK, *networks])


def is_local(key: str) -> bool:
    """Whether ``client_key()`` named the node's own machine (limits do not apply to it)."""
    try:
        return ipaddress.ip_address(key).is_loopback
    except ValueError:
        return key.startswith("unix:")


def peer_host(peer: str | None) -> str:
    """The host of an autobahn peer descriptor (``tcp4:1.2.3.4:5678``, ``tcp6:::1:5678``);
    other descriptors (``unix:...``, ``process:...``) are their own key."""
    if not peer:
        return "unknown"
    kind, _, rest = peer.partition(":")
    if kind in ("tcp4", "tcp6") and ":" in rest:
        return rest.rsplit(":", 1)[0].strip("[]")
    return peer


def forwarded_chain(forwarded_for: str | Sequence[str] | None, peer: str) -> list[str]:
    """The hops of a request, oldest first, ending with the TCP peer: ``X-Forwarded-For``'s
    entries (one header or several) and then ``peer``."""
    values = [forwarded_for] if isinstance(forwarded_for, str) else list(forwarded_for or ())
    hops = [hop.strip() for value in values for hop in value.split(",") if hop.strip()]
    return hops + [peer]


def client_key(chain: Sequence[str], trusted: TrustedProxies) -> str:
    """The address that limits count against, from ``forwarded_chain()``: walk back from the
    peer over trusted proxies; the first hop that is not one is the client."""
    host = chain[-1]
    for hop in reversed(chain):
        host = hop
        if hop not in trusted:
            break
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]  # "unknown", a unix socket, or garbage a trusted proxy passed on
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if not address.is_loopback:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class Counts:
    """How many of something each key holds, at most ``limit`` each (0: no limit)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._held: dict[str, int] = {}

    def take(self, key: str) -> bool:
        """One more for ``key`` if it is under the limit; False (and nothing taken) if not."""
        held = self._held.get(key, 0)
        if self.limit and held >= self.limit:
            return False
        self._held[key] = held + 1
        return True

    def give_back(self, key: str) -> None:
        held = self._held.get(key, 0) - 1
        if held > 0:
            self._held[key] = held
        else:
            self._held.pop(key, None)

    def held(self, key: str) -> int:
        return self._held.get(key, 0)

    def __len__(self) -> int:
        """How many keys hold anything (for tests: nothing is kept for a key that holds none)."""
        return len(self._held)


class Attempts:
    """A token bucket per key: ``burst`` attempts at once, refilled at ``per_minute``.

    ``allowed(key)`` looks without spending; ``spend(key)`` uses one (for failed
    authentications: only failures spend). At most ``max_keys`` buckets are kept; past that the
    least recently used one is forgotten, which gives that key a full bucket again (memory stays
    bounded whatever addresses an attacker cycles through).
    """

    def __init__(self, *, burst: int, per_minute: float, clock, max_keys: int = 100_000):
        self.burst, self.rate, self.clock, self.max_keys = burst, per_minute / 60.0, clock, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, at)

    def _tokens(self, key: str) -> float:
        tokens, at = self._buckets.get(key, (float(self.burst), 0.0))
        return min(float(self.burst), tokens + (self.clock.seconds() - at) * self.rate)

    def allowed(self, key: str) -> bool:
        return not self.burst or key not in self._buckets or self._tokens(key) >= 1.0

    def spend(self, key: str) -> None:
        if not self.burst:
            return
        tokens = self._tokens(key) - 1.0
        self._buckets[key] = (max(0.0, tokens), self.clock.seconds())
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0 if it may now)."""
        missing = 1.0 - self._tokens(key)
        return 0.0 if missing <= 0 or not self.rate else missing / self.rate

    def __len__(self) -> int:
        return len(self._buckets)
