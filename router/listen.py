"""A plain autobahn subscriber that prints events: what a browser would receive."""

from __future__ import annotations

import json
import sys

from autobahn.twisted.component import Component, run
from autobahn.wamp.types import SubscribeOptions

from .settings import NodeSettings


def listen(topic: str, *, url: str | None = None, realm: str | None = None) -> int:
    settings = NodeSettings.from_env()
    component = Component(transports=url or settings.ws_url, realm=realm or settings.realm)

    @component.on_join
    async def joined(session, details):
        def on_event(*args, _djwamp_details=None, **kwargs):
            _print(json.dumps({"id": _djwamp_details.transaction_hash, "args": list(args), "kwargs": kwargs}))

        # details under a name no event's keyword arguments will use
        await session.subscribe(on_event, topic, options=SubscribeOptions(details_arg="_djwamp_details"))
        _print(f"listening on {topic} (Ctrl-C stops)")

    run([component], log_level="warn")
    return 0


def _print(line: str) -> None:
    # autobahn's run() routes sys.stdout into its logger; events go to the real stdout
    sys.__stdout__.write(line + "\n")
    sys.__stdout__.flush()
