"""``python -m router`` (or ``djwamp``): run the development stack, run only the node for your
own Django project, render the node config, or listen to a topic with a plain autobahn client."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="djwamp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start Redis, Django and the Crossbar node for development")
    node = commands.add_parser("node", help="run only the Crossbar node, for the Django project in this directory "
                                            "(next to its own runserver and Redis)")
    node.add_argument("--cbdir", type=Path, help="the node directory (default: .crossbar here)")
    config = commands.add_parser("node-config", help="write the Crossbar config.json for this environment")
    config.add_argument("--cbdir", type=Path, default=Path(".crossbar"), help="the node directory")
    config.add_argument("--pythonpath", type=Path, action="append", metavar="DIR",
                        help="a directory the workers import from, e.g. your project's (repeatable; "
                             "default: this checkout and its demo site)")
    listen = commands.add_parser("listen", help="print the events published to TOPIC (a plain autobahn client)")
    listen.add_argument("topic")
    listen.add_argument("--url", help="WebSocket URL (default: from DJWAMP_HOST/DJWAMP_PORT)")
    listen.add_argument("--realm", help="realm (default: DJWAMP_REALM or djwamp)")
    args = parser.parse_args(argv)

    if args.command == "run":
        from .dev import run

        return run()
    if args.command == "node":
        from .dev import node

        return node(args.cbdir)
    if args.command == "node-config":
        from . import nodeconfig
        from .settings import NodeSettings

        print(nodeconfig.write(NodeSettings.from_env(), args.cbdir,
                               pythonpath=args.pythonpath or nodeconfig.DEFAULT_PYTHONPATH))
        return 0
    from .listen import listen

    return listen(args.topic, url=args.url, realm=args.realm)


if __name__ == "__main__":
    sys.exit(main())
