"""The benchmarks reuse the test fixtures that start real processes (redis-server, a node)."""

from tests.conftest import crossbar_node, realtime_redis, redis_server, test_db_path  # noqa: F401
