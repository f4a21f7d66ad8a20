"""``manage.py realtime_nodes [--remove NODE_ID]``: the nodes reading the stream, by consumer group.

Each node's bridge reads ``REALTIME["STREAM"]`` in a group of its own, ``djwamp:<node id>``.
A node that is gone for good leaves its group behind: it does not hold up trimming, and it
holds at most the entries that node had read but not acknowledged (a few hundred), but it
stays until someone removes it. This lists the groups with what Redis knows of them and
removes one on request.
"""

from __future__ import annotations

import redis
from django.core.management.base import BaseCommand, CommandError

from realtime._conf import get_settings
from realtime._publish import redis_client

GROUP_PREFIX = "djwamp:"
#: a group whose consumers were all idle for less than this is a node that is probably running
ACTIVE_MS = 60_000


class Command(BaseCommand):
    help = (
        "List the djwamp nodes that read the event stream (one Redis consumer group each), with "
        "their pending entries, lag and idle time; --remove NODE_ID deletes the group of a node "
        "that is gone for good."
    )

    def add_arguments(self, parser):
        parser.add_argument("--remove", metavar="NODE_ID", help="delete the consumer group djwamp:NODE_ID")
        parser.add_argument("--force", action="store_true",
                            help="with --remove: even if the node read from the stream in the last minute")

    def handle(self, *, remove: str | None, force: bool, **options):
        conf = get_settings()
        client = redis_client(conf)
        try:
            groups = _groups(client, conf.STREAM)
        except redis.RedisError as exc:
            raise CommandError(f"Redis at {conf.redis_display}: {exc}") from exc
        if remove is not None:
            return self._remove(client, conf.STREAM, groups, remove, force)
        if not groups:
            self.stdout.write(f"no node reads {conf.STREAM!r} yet")
            return
        self.stdout.write(f"{'node':<24} {'pending':>8} {'lag':>8} {'idle s':>9}  last delivered")
        for group in groups:
            lag = "-" if group["lag"] is None else str(group["lag"])
            idle = "-" if group["idle_ms"] is None else f"{group['idle_ms'] / 1000:.0f}"
            self.stdout.write(f"{group['node']:<24} {group['pending']:>8} {lag:>8} {idle:>9}  "
                              f"{group['last_delivered']}")

    def _remove(self, client, stream: str, groups: list[dict], node: str, force: bool) -> None:
        found = next((g for g in groups if g["node"] == node), None)
        if found is None:
            known = ", ".join(g["node"] for g in groups) or "none"
            raise CommandError(f"no node {node!r} reads {stream!r} (nodes: {known})")
        if not force and found["idle_ms"] is not None and found["idle_ms"] < ACTIVE_MS:
            raise CommandError(f"node {node!r} read from the stream {found['idle_ms'] / 1000:.0f} s ago: it looks "
                               "alive (a running node would create its group again). Stop it first, or use --force.")
        client.xgroup_destroy(stream, found["name"])
        self.stdout.write(f"removed {found['name']} ({found['pending']} pending entries dropped)")


def _groups(client, stream: str) -> list[dict]:
    try:
        raw = client.xinfo_groups(stream)
    except redis.ResponseError as exc:
        if "no such key" in str(exc).lower():
            return []
        raise
    groups = []
    for info in raw:
        info = {_text(k): v for k, v in info.items()}
        name = _text(info["name"])
        if not name.startswith(GROUP_PREFIX):
            continue
        consumers = client.xinfo_consumers(stream, name)
        idles = [int(c.get("idle", c.get(b"idle", 0))) for c in consumers]
        groups.append({
            "name": name,
            "node": name[len(GROUP_PREFIX):],
            "pending": int(info.get("pending", 0)),
            "lag": None if info.get("lag") is None else int(info["lag"]),
            "idle_ms": min(idles) if idles else None,
            "last_delivered": _text(info.get("last-delivered-id", "")),
        })
    return sorted(groups, key=lambda g: g["node"])


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
