"""router.fanout: the prepared-frame send path writes exactly what autobahn's own path writes."""

import json
import subprocess
import sys

import pytest

# a real autobahn server protocol after a real opening handshake, on an in-memory transport;
# in a subprocess so that the patch stays out of this test process
CODE = r"""
import json, sys
from twisted.internet.testing import StringTransport
from autobahn.twisted.websocket import WampWebSocketServerFactory
from autobahn.wamp import message
from autobahn.wamp.serializer import JsonSerializer, CBORSerializer
import router.fanout as fanout

assert fanout.apply() is True and fanout.apply() is False

class Session:
    _authid = _session_id = None
    def onOpen(self, transport): pass
    def onClose(self, wasClean): pass
    def onMessage(self, msg): pass

def open_protocol(serializer, **options):
    factory = WampWebSocketServerFactory(Session, serializers=[serializer])
    if options:
        factory.setProtocolOptions(**options)
    proto = factory.buildProtocol(None)
    proto.makeConnection(StringTransport())
    proto.dataReceived(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: wamp.2." + serializer.SERIALIZER_ID.encode() + b"\r\n\r\n")
    assert proto.state == proto.STATE_OPEN, proto.state
    proto.transport.clear()
    return proto

def event(size):
    return message.Event(1, 2, args=["x" * size], kwargs={"n": size})

STATS = ("outgoingWebSocketMessages", "outgoingWebSocketFrames", "outgoingOctetsAppLevel",
         "outgoingOctetsWebSocketLevel", "outgoingOctetsWireLevel")

def sent(proto, send, msgs):
    for msg in msgs:
        send(proto, msg)
    stats = {name: getattr(proto.trafficStats, name) for name in STATS}
    return proto.transport.value().hex(), stats


from autobahn.wamp.websocket import WampWebSocketProtocol
patched, original = WampWebSocketProtocol.send, WampWebSocketProtocol.send.__wrapped__
results = {}
for make in (JsonSerializer, CBORSerializer):
    sizes = (0, 100, 125, 126, 200, 65535, 65536, 200000)
    # the same message to three receivers, as in a fan-out: built once, written three times
    msgs = [event(size) for size in sizes]
    fast = sent(open_protocol(make()), patched, [m for m in msgs for _ in range(3)])
    slow = sent(open_protocol(make()), original, [m for size in sizes for m in [event(size)] * 3])
    frames = sum(1 for m in msgs for k in m._serialized if isinstance(k, tuple))
    results[make.__name__] = {"same": fast == slow, "cached": frames}

# what falls back to autobahn's own path: a frame over the size limit still raises
from autobahn.exception import PayloadExceededError
proto = open_protocol(JsonSerializer(), maxMessagePayloadSize=50)
try:
    patched(proto, event(100))
    results["limit"] = "sent"
except PayloadExceededError:
    results["limit"] = "PayloadExceededError"
# automatic fragmentation: autobahn fragments, the same as without the patch
frag = [sent(open_protocol(JsonSerializer(), autoFragmentSize=64), send, [event(300)]) for send in (patched, original)]
results["fragmented_same"] = frag[0] == frag[1]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def results():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_frames_and_counters_match_autobahn_and_are_built_once_per_message(results):
    for name in ("JsonSerializer", "CBORSerializer"):
        assert results[name] == {"same": True, "cached": 8}, name


def test_unusual_sends_take_autobahns_own_path(results):
    assert results["limit"] == "PayloadExceededError"
    assert results["fragmented_same"] is True


@pytest.mark.parametrize("size, header", [(0, "8100"), (125, "817d"), (126, "817e007e"),
                                          (65536, "817f0000000000010000")])
def test_websocket_frame_header(size, header):
    from router.fanout import websocket_frame

    frame = websocket_frame(b"a" * size, is_binary=False)
    assert frame[: len(header) // 2].hex() == header and len(frame) == len(header) // 2 + size
    assert websocket_frame(b"", is_binary=True).hex() == "8200"
