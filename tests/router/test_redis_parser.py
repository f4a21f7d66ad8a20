"""The bridge's Redis connections parse replies with hiredis (docs/topics/performance.md)."""

import txredisapi


def test_txredisapi_uses_the_hiredis_parser():
    # without hiredis txredisapi falls back to a parser that costs a reactor iteration per
    # bulk string: a 100-entry XREADGROUP reply took ~1,000 of them
    assert txredisapi.RedisProtocol is txredisapi.HiredisProtocol
