"""router.crossbar_fixes: a receiver closing during a fan-out does not stop it."""

import json
import subprocess
import sys

CODE = """
import json
from autobahn.exception import Disconnected
from autobahn.wamp.exception import TransportLost
import router.crossbar_fixes as fixes
from crossbar.router.router import Router

class Transport:
    def __init__(self, error=None):
        self.error, self.sent = error, []
    def send(self, msg):
        if self.error:
            raise self.error
        self.sent.append(msg)

class Session:
    def __init__(self, transport):
        self._transport, self._session_id = transport, 1

router = Router.__new__(Router)
router._trace_traffic = False
router._is_traced = False
router._message_stats = {"sent": {}}

def deliver(receivers):
    delivered = []
    for session in receivers:
        try:
            Router.send(router, session, "EVENT")
        except Exception as exc:
            return delivered, type(exc).__name__
        delivered.append(session)
    return delivered, None

def run():
    ok1, closing, gone, ok2 = (Transport(), Transport(Disconnected("closed")), Transport(TransportLost()), Transport())
    delivered, error = deliver([Session(t) for t in (ok1, closing, gone, ok2)])
    return {"error": error, "first": len(ok1.sent), "last": len(ok2.sent)}

before = None
try:
    before = run()
except Exception as exc:
    before = {"error": type(exc).__name__}
first = fixes.apply()
after = run()
print(json.dumps({"before": before, "after": after, "applied": first, "again": fixes.apply()}))
"""


def test_sending_to_a_closing_receiver_is_skipped_and_the_fan_out_goes_on():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["before"]["error"] == "Disconnected", "unpatched, Crossbar's send raises (the bug)"
    assert result["after"] == {"error": None, "first": 1, "last": 1}
    assert result["applied"] is True and result["again"] is False
