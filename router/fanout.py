"""One WebSocket frame per event, not one per subscriber: the router worker's fan-out send path.

When Crossbar's broker fans an event out, it sends the *same* ``Event`` message to every
receiver, and autobahn already serializes it once per serializer (``Message.serialize`` caches
the bytes). What it still does once per receiver is everything after that:
``WampWebSocketProtocol.send`` evaluates its trace line's arguments, ``sendMessage`` asserts its
argument types and checks compression and fragmentation, ``sendFrame`` builds the frame header
byte by byte and joins it to the payload, and ``sendData`` writes it and builds a debug line.
A server's frames are not masked, so without compression or fragmentation that frame is the
same bytes for every receiver. py-spy put these four functions at ~20 % of the router's own
time under the throughput benchmark (docs/topics/performance.md, lever 8).

``apply()`` gives ``WampWebSocketProtocol.send`` a fast path: the frame is built on first use
and kept with the message's own serialization cache (``Message._serialized``, so
``Message.uncache()`` drops it too); every receiver then gets one ``transport.write`` of those
bytes and the same traffic counters autobahn keeps. Anything unusual takes autobahn's own path,
unchanged: trace logging on, a connection not open, per-message compression negotiated,
automatic fragmentation, masked or logged frames, a message over the size limit, tracked
timings, a client-side protocol, or data already queued for a synchronous send.

``DJWAMP_FRAME_CACHE=0`` leaves autobahn's send path alone (to compare, or to rule this out).
"""

from __future__ import annotations

import os
import struct

__all__ = ["apply", "websocket_frame"]

_applied = False

#: a key in ``Message._serialized`` that no serializer object can collide with
_FRAME = object()


def websocket_frame(payload: bytes, is_binary: bool) -> bytes:
    """An unmasked, unfragmented, uncompressed WebSocket data frame (RFC 6455, 5.2)."""
    first = 0x82 if is_binary else 0x81  # FIN + opcode 2 (binary) or 1 (text)
    size = len(payload)
    if size <= 125:
        header = bytes((first, size))
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


def apply() -> bool:
    """Patch ``autobahn.wamp.websocket.WampWebSocketProtocol.send`` once per process.

    False if already done, or turned off with ``DJWAMP_FRAME_CACHE=0``.
    """
    global _applied
    if _applied or os.environ.get("DJWAMP_FRAME_CACHE", "1") == "0":
        return False
    _applied = True
    from autobahn.wamp.exception import SerializationError
    from autobahn.wamp.websocket import WampWebSocketProtocol
    from autobahn.websocket.protocol import WebSocketProtocol
    from txaio.tx import _no_op

    original = WampWebSocketProtocol.send
    OPEN = WebSocketProtocol.STATE_OPEN

    def send(self, msg):
        if (
            self._session is None
            or self.state != OPEN
            or self.log.trace is not _no_op
            or self._perMessageCompress is not None
            or self.send_queue
            or self.autoFragmentSize
            or self.trackedTimings
            or self.logFrames
            or self.logOctets
            or not self.factory.isServer
            or self.maskServerFrames
        ):
            return original(self, msg)
        serializer = self._serializer
        try:
            payload, is_binary = serializer.serialize(msg)
        except Exception as e:
            self.log.error(f"WAMP message serialization error: {e}")
            raise SerializationError(f"WAMP message serialization error: {e}") from e
        size = len(payload)
        if 0 < self.maxMessagePayloadSize < size:
            return original(self, msg)  # autobahn's own warning and PayloadExceededError
        cache = msg._serialized
        key = (_FRAME, serializer._serializer)
        frame = cache.get(key)
        if frame is None:
            frame = cache[key] = websocket_frame(payload, is_binary)
        stats = self.trafficStats
        stats.outgoingWebSocketMessages += 1
        stats.outgoingWebSocketFrames += 1
        stats.outgoingOctetsAppLevel += size
        stats.outgoingOctetsWebSocketLevel += size
        stats.outgoingOctetsWireLevel += len(frame)
        self.transport.write(frame)

    send.__wrapped__ = original
    send.__doc__ = original.__doc__
    WampWebSocketProtocol.send = send
    return True
