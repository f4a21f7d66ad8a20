"""manage.py realtime_nodes: the consumer groups of the stream, and removing a dead node's."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from realtime import publish


def run(*argv) -> str:
    out = StringIO()
    call_command("realtime_nodes", *argv, stdout=out)
    return out.getvalue()


def test_no_stream_yet(stream):
    assert "no node reads" in run()


def test_lists_each_node_with_its_pending_entries_and_lag(stream):
    publish("public.a", 1)
    stream.client.xgroup_create(stream.key, "djwamp:web-1", id="0")
    stream.client.xgroup_create(stream.key, "djwamp:web-2", id="0")
    stream.client.xgroup_create(stream.key, "someone-else", id="0")
    publish("public.a", 2)
    stream.client.xreadgroup("djwamp:web-1", "web-1", {stream.key: ">"}, count=1)
    lines = run().splitlines()
    assert lines[0].split()[:4] == ["node", "pending", "lag", "idle"]
    web1, web2 = lines[1].split(), lines[2].split()
    assert web1[:3] == ["web-1", "1", "1"] and web2[:3] == ["web-2", "0", "2"]
    assert web2[3] == "-", "a group nobody ever read from has no consumer, so no idle time"
    assert len(lines) == 3, "groups that are not djwamp's are not listed"


def test_removes_a_gone_nodes_group_but_not_one_that_just_read(stream):
    publish("public.a", 1)
    stream.client.xgroup_create(stream.key, "djwamp:old", id="0")
    stream.client.xreadgroup("djwamp:old", "old", {stream.key: ">"}, count=1)
    with pytest.raises(CommandError, match="looks alive"):
        run("--remove", "old")
    assert "removed djwamp:old (1 pending entries dropped)" in run("--remove", "old", "--force")
    assert [g["name"] for g in stream.client.xinfo_groups(stream.key)] == []


def test_removing_an_unknown_node_names_the_known_ones(stream):
    publish("public.a", 1)
    stream.client.xgroup_create(stream.key, "djwamp:web-1", id="0")
    with pytest.raises(CommandError, match=r"no node 'web-9' .*\(nodes: web-1\)"):
        run("--remove", "web-9")


def test_redis_down_is_a_clear_error():
    # the autouse fixture points REALTIME at a port where nothing listens
    with pytest.raises(CommandError, match="Redis at"):
        run()
