"""What a hostile or broken WebSocket client can send, and that nobody else notices it.

Raw WAMP-over-JSON frames against a node of its own (a clean log): malformed messages, a frame
over ``max_message_size``, bad URIs, wrong argument types, actions on reserved URIs, and a burst
of connections that open and drop at once, and a subscriber that stops reading. Each gets a WAMP
error or a closed connection, the node logs no traceback, and a subscriber connected all along
receives the events published after (or meanwhile).
"""

from __future__ import annotations

import json
import socket
import threading

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from realtime import publish
from tests.conftest import running_node

pytestmark = pytest.mark.django_db(transaction=True)

HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
SUBSCRIBE, SUBSCRIBED, EVENT, CALL, RESULT = 32, 33, 36, 48, 50
ROLES = {"subscriber": {}, "publisher": {}, "caller": {}}


@pytest.fixture(scope="module")
def node(tmp_path_factory, redis_server, test_db_path):
    with running_node(tmp_path_factory, redis_server.url, DJANGO_DB_PATH=test_db_path) as node:
        yield node


def wamp(node):
    """An anonymous WAMP session over a raw WebSocket: (socket, WELCOME details)."""
    # max_queue=None: the background thread reads (and answers pings) however far behind the test is
    ws = connect(node.ws_url, subprotocols=["wamp.2.json"], open_timeout=10, max_size=None, max_queue=None)
    ws.send(json.dumps([HELLO, node.realm, {"roles": ROLES, "authmethods": ["anonymous"]}]))
    welcome = json.loads(ws.recv(timeout=10))
    assert welcome[0] == WELCOME, welcome
    return ws


def answer(ws) -> list:
    return json.loads(ws.recv(timeout=10))


def closed_by_router(ws) -> bool:
    """True once the router closed (or aborted) the session; a WAMP ABORT/GOODBYE counts."""
    try:
        while True:
            message = json.loads(ws.recv(timeout=10))
            if message[0] in (ABORT, GOODBYE):
                return True
    except ConnectionClosed:
        return True
    except TimeoutError:
        return False


@pytest.fixture
def watcher(node, realtime_redis):
    ws = wamp(node)
    ws.send(json.dumps([SUBSCRIBE, 1, {}, "public.abuse"]))
    assert answer(ws)[0] == SUBSCRIBED
    yield ws
    ws.close()


@pytest.mark.parametrize("frame", [
    "not json", "[", "{}", "[]", '["x"]', "[48]", json.dumps([SUBSCRIBE, "one", {}, "public.x"]),
    json.dumps([CALL, 1, {}, "demo.whoami", {"not": "a list"}]), json.dumps([SUBSCRIBE, 1, [], "public.x"]),
    "\x00" * 10,
], ids=["text", "open-bracket", "object", "empty", "unknown-type", "short", "string-request-id",
        "dict-args", "list-options", "nul"])
def test_a_malformed_message_closes_only_that_connection(node, watcher, frame):
    ws = wamp(node)
    ws.send(frame)
    assert closed_by_router(ws)
    _still_delivers(watcher)


def test_a_frame_over_the_size_limit_closes_only_that_connection(node, watcher):
    ws = wamp(node)
    try:
        ws.send(json.dumps([CALL, 1, {}, "demo.whoami", ["x" * (1024 * 1024 + 1)]]))
    except ConnectionClosed:
        pass
    assert closed_by_router(ws)
    _still_delivers(watcher)


@pytest.mark.parametrize("action, uri, errors", [
    (SUBSCRIBE, "public..x", {"wamp.error.invalid_uri", "djwamp.error.not_authorized"}),
    (SUBSCRIBE, "public x", {"wamp.error.invalid_uri", "djwamp.error.not_authorized"}),
    (SUBSCRIBE, "wamp.session.on_join", {"djwamp.error.not_authorized", "wamp.error.not_authorized"}),
    (SUBSCRIBE, "djwamp.node", {"djwamp.error.not_authorized", "wamp.error.not_authorized"}),
    (CALL, "wamp.session.list", {"djwamp.error.not_authorized", "wamp.error.not_authorized"}),
    (CALL, "djwamp.authenticate", {"djwamp.error.not_authorized", "wamp.error.not_authorized"}),
    (CALL, "no.such.procedure", {"djwamp.error.not_authorized", "wamp.error.not_authorized",
                                 "wamp.error.no_such_procedure"}),
    (CALL, "x" * 10_000, {"wamp.error.invalid_uri", "djwamp.error.not_authorized", "wamp.error.not_authorized"}),
])
def test_a_bad_or_forbidden_uri_gets_an_error_and_the_session_goes_on(node, watcher, action, uri, errors):
    ws = wamp(node)
    request = [action, 7, {}, uri] + ([[]] if action == CALL else [])
    ws.send(json.dumps(request))
    try:
        reply = answer(ws)
    except ConnectionClosed:
        # a URI autobahn cannot even parse ends the connection (a protocol error): allowed too
        reply = [ABORT, {}, "closed"]
    if reply[0] == ABORT:
        assert uri in ("public x",) or reply[2] in errors, reply
    else:
        assert reply[0] == ERROR and reply[1] == action and reply[2] == 7 and reply[4] in errors, reply
        ws.send(json.dumps([CALL, 8, {}, "demo.whoami", []]))
        assert answer(ws)[:2] == [RESULT, 8], "the session still works"
    ws.close()
    _still_delivers(watcher)


def test_a_burst_of_connections_that_drop_at_once(node, watcher):
    port = node.settings.port

    def hit(n: int) -> None:
        for _ in range(n):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                raw.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                            b"Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n")
            # and some that get as far as HELLO before they vanish
            ws = wamp(node)
            ws.socket.close()

    threads = [threading.Thread(target=hit, args=(25,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    _still_delivers(watcher)


def _still_delivers(watcher) -> None:
    event_id = publish("public.abuse", {"still": "here"})
    while True:
        message = answer(watcher)
        if message[0] == EVENT:
            assert message[3].get("transaction_hash") == event_id
            return


class SilentClient:
    """A WebSocket client on a bare socket that subscribes and then never reads again."""

    def __init__(self, node, topic: str):
        import base64
        import os

        self.sock = socket.create_connection(("127.0.0.1", node.settings.port), timeout=10)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{node.settings.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n").encode())
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self.sock.recv(4096)
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.send([HELLO, node.realm, {"roles": ROLES, "authmethods": ["anonymous"]}])
        assert self.read()[0] == WELCOME
        self.send([SUBSCRIBE, 1, {}, topic])
        assert self.read()[0] == SUBSCRIBED

    def send(self, message) -> None:
        import os
        import struct

        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        header = bytes([0x81]) + (bytes([0x80 | len(payload)]) if len(payload) < 126
                                  else bytes([0x80 | 126]) + struct.pack("!H", len(payload)))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def read(self) -> list:
        """One text frame (only while setting up; afterwards the client is silent)."""
        while True:
            if len(self._buffer) >= 2:
                length, offset = self._buffer[1] & 0x7F, 2
                if length == 126:
                    length, offset = int.from_bytes(self._buffer[2:4], "big"), 4
                if len(self._buffer) >= offset + length:
                    frame, self._buffer = self._buffer[offset:offset + length], self._buffer[offset + length:]
                    return json.loads(frame)
            self._buffer += self.sock.recv(4096)

    def closed_by_the_router(self) -> bool:
        """Drain what the router had sent; True if the connection then ends (EOF or reset)."""
        self.sock.settimeout(5)
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True


def test_a_subscriber_that_stops_reading_is_dropped_and_nobody_else_waits_for_it(node, watcher):
    # WebSocket pings every 10 s with a 5 s timeout (router/nodeconfig.py): a client that reads
    # nothing answers no ping, so the router closes it; meanwhile its events queue for it alone
    import time

    silent = SilentClient(node, "public.abuse")
    try:
        started, sent = time.monotonic(), []
        while time.monotonic() - started < 20:
            sent.append(publish("public.abuse", {"n": len(sent), "pad": "x" * 200}))
            time.sleep(0.01)
        received = set()
        while len(received) < len(sent):
            message = answer(watcher)
            if message[0] == EVENT:
                received.add(message[3]["transaction_hash"])
        assert received == set(sent), "the watcher got every event while the other one did not read"
        assert silent.closed_by_the_router(), "a subscriber that reads nothing must not be kept forever"
    finally:
        silent.sock.close()


def test_nothing_above_put_a_traceback_in_the_node_log(node):
    # runs last in this module: the node saw every case above, and logged each in a line
    output = node.proc.output()
    assert "Traceback" not in output, output[output.index("Traceback") - 2000:][:4000]
    assert "ProtocolError: invalid serialization of WAMP message" in output
