"""A node never refuses a connection because it is still starting (issue: reliability).

Crossbar starts a router worker's own components before its transports: the authenticator
and the authorizer are embedded in the router (router/nodeconfig.py), so the WebSocket port
opens only once both answer. Clients that hammer the port from the moment the node is
launched get "connection refused" (nothing listens yet) or a session, never a WAMP refusal
such as ``no callee registered for procedure djwamp.authenticate``. And a session admitted
that early finds the container's components there: the authenticator holds browsers until
every one of them has started (``djwamp node ready``).
"""

from __future__ import annotations

import socket

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor, threads
from twisted.internet.error import ConnectError

from router.processes import start_crossbar
from tests.conftest import make_node
from tests.wamp import connect_ws, sleep

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 8
JOINED_EACH = 5


@pytest_twisted.ensureDeferred
async def test_connections_during_start_up_are_never_refused_by_the_router(tmp_path_factory, redis_server,
                                                                           test_db_path):
    node = make_node(tmp_path_factory, redis_server.url, DJANGO_DB_PATH=test_db_path)
    node.proc = start_crossbar(node.cbdir, node.env, log_path=node.cbdir / "node-0.log", wait_for=())
    refusals: list[str] = []
    missing: list[str] = []
    not_listening = 0

    async def client() -> int:
        nonlocal not_listening
        joined = 0
        while joined < JOINED_EACH:
            try:
                session = await connect_ws(node.ws_url, node.realm, timeout=20)
            except (ConnectError, ConnectionRefusedError):
                not_listening += 1        # the port is not open yet: a client retries
                await sleep(0.02)
                continue
            except ConnectionError:
                # Crossbar mounts a web transport's paths just after its port opens: for those
                # milliseconds an upgrade to /ws reaches "/" (Django) and fails before WAMP
                # starts, which a client retries like a closed port
                await sleep(0.02)
                continue
            except ApplicationError as exc:
                refusals.append(exc.error)
                await sleep(0.02)
                continue
            joined += 1
            try:
                # answered by the history component, in the container
                await session.call("djwamp.history", "public.feed")
            except ApplicationError as exc:
                missing.append(exc.error)
            session.leave()
        return joined

    try:
        watching = threads.deferToThread(node.proc.wait_for, "djwamp node ready", 90)
        joined = await defer.gatherResults([defer.ensureDeferred(client()) for _ in range(CLIENTS)],
                                           consumeErrors=True).addTimeout(120, reactor)
        await watching
    finally:
        node.stop()
    assert refusals == [], f"the starting node refused {len(refusals)} connections: {sorted(set(refusals))}"
    assert missing == [], f"sessions admitted before the node was ready: {sorted(set(missing))}"
    assert joined == [JOINED_EACH] * CLIENTS
    assert not_listening > 0, "the clients must have started before the node listened"


def test_a_node_whose_embedded_components_cannot_start_stops_before_it_listens(tmp_path_factory, redis_server,
                                                                       test_db_path):
    node = make_node(tmp_path_factory, redis_server.url, DJANGO_DB_PATH=test_db_path,
                     DJANGO_SETTINGS_MODULE="tests.bad_rules_settings")
    node.proc = start_crossbar(node.cbdir, node.env, log_path=node.cbdir / "node-0.log", wait_for=())
    try:
        # REALTIME["RULES"] is unusable: the first embedded component to read it refuses to start
        node.proc.wait_for(r"djwamp (authenticator|authorizer) could not start", 90)
        node.proc.proc.wait(60)
        assert node.proc.proc.returncode != 0
        output = node.proc.output()
        assert "Ok, local node configuration ran successfully" not in output
        assert "REALTIME['RULES'] is not usable" in output
    finally:
        node.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", node.settings.port)) != 0, "nothing may listen on the node's port"
