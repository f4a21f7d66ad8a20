"""Procedures that exist only for the integration tests (DJWAMP_EXTRA_APPS=tests.rpc_app).

Importing this package does not import ``procedures``: the pytest process keeps its own
registry free of them.
"""

#: in the message of the exception ``tests.rpc.crash`` raises; no client may ever see it
SECRET = "the-database-password-is-hunter2"
