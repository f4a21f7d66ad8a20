"""The smallest Channels app for the comparison row of `make bench`: one WebSocket consumer.

It joins the group "bench" on connect, says {"ready": true}, and forwards the `data` of each
`bench.event` (sent with `group_send` from the benchmark process) to the socket as JSON.

    DJANGO_SETTINGS_MODULE=bench.channels_settings daphne bench.channels_app:application
"""

import json

import django

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

GROUP = "bench"


class BenchConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps({"ready": True}))

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def bench_event(self, event):
        await self.send(text_data=json.dumps(event["data"]))


application = ProtocolTypeRouter({"websocket": URLRouter([path("bench/", BenchConsumer.as_asgi())])})
