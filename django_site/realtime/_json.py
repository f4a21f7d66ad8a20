"""JSON as djwamp sends it, in one place: Django's encoder (dates, decimals, UUIDs, lazy
translations), no NaN or infinity (not JSON), compact, UTF-8 as it is.

``publish()`` encodes events with it; procedures' results take the same round trip, so a page
gets the same JSON from both.
"""

from __future__ import annotations

import functools
import json

from django.core.serializers.json import DjangoJSONEncoder

__all__ = ["dumps"]

dumps = functools.partial(json.dumps, cls=DjangoJSONEncoder, allow_nan=False, ensure_ascii=False,
                          separators=(",", ":"))
