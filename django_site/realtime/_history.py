"""Which topics keep a bounded history, for clients that reconnect and ask what they missed.

``REALTIME["HISTORY"] = {"public.feed": 100, "user.": 20}``: a key ending in "." is a
prefix, any other key an exact topic; the value is how many recent events to keep. The
longest matching key wins. Pure logic: the bridge writes the history, a router component
serves it; both read this policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from . import wire

__all__ = ["HistoryPolicy", "HistoryError", "parse_history", "MAX_HISTORY_SIZE"]

MAX_HISTORY_SIZE = 10_000


class HistoryError(ValueError):
    """A HISTORY setting that cannot be used; the message names the entry and the fix."""


@dataclass(frozen=True)
class HistoryPolicy:
    exact: Mapping[str, int]
    prefixes: tuple[tuple[str, int], ...]  # longest first

    def size_for(self, topic: str) -> int | None:
        """How many events ``topic`` keeps, or ``None`` when it keeps no history."""
        if topic in self.exact:
            return self.exact[topic]
        for prefix, size in self.prefixes:
            if topic.startswith(prefix):
                return size
        return None

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)


def parse_history(raw: object) -> HistoryPolicy:
    if not isinstance(raw, Mapping):
        raise HistoryError(f"HISTORY must be a dict of topic or prefix -> size, not {type(raw).__name__}")
    exact: dict[str, int] = {}
    prefixes: list[tuple[str, int]] = []
    for key, size in raw.items():
        if not isinstance(key, str) or not wire.is_valid_uri(key.removesuffix(".")) or \
                key.startswith(wire.RESERVED_PREFIXES):
            raise HistoryError(f"HISTORY key {key!r} is not a topic or a prefix ending in '.'")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_HISTORY_SIZE:
            raise HistoryError(f"HISTORY[{key!r}] must be a number of events from 1 to {MAX_HISTORY_SIZE}")
        if key.endswith("."):
            prefixes.append((key, size))
        else:
            exact[key] = size
    prefixes.sort(key=lambda item: len(item[0]), reverse=True)
    return HistoryPolicy(exact, tuple(prefixes))
