"""``cadenza ui --address URL``: the web UI for any stack, served on this machine.

The pages are served from 127.0.0.1 and their API calls are forwarded to ``--address`` by the
client's own transport (cadenza.ui), so a deployed, IAM-protected API is reached with the
user's credentials and nothing in AWS has to be public. ``cadenza dev`` serves the same UI on
its own port; this command is for every other stack.
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

from rich.console import Console
from rich.markup import escape

__all__ = ["DEFAULT_UI_PORT", "add_parser", "run_ui"]

#: Next to the API's default port (7933), so both can run on one machine.
DEFAULT_UI_PORT = 7934

DESCRIPTION = """\
Serve the web UI on this machine for any stack: the runs list, each run's timeline, history,
pending activities and current stack, and the actions (signal, query, cancel, terminate,
reset). The pages' API calls go to --address signed with your AWS credentials (as the CLI's
are), so a deployed, IAM-protected API needs nothing public. `cadenza dev` serves the same UI
on its own port (http://127.0.0.1:7933/).

example:
  cadenza ui --address https://abc123.execute-api.eu-west-1.amazonaws.com
  # then open http://127.0.0.1:7934/"""

console = Console()
errors = Console(stderr=True)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``cadenza ui`` on the top-level subparsers; its ``func`` runs it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "ui", help="serve the web UI for a stack (runs, histories, timelines, actions)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--address", default=os.environ.get("CADENZA_ADDRESS", "http://127.0.0.1:7933"),
        metavar="URL",
        help="the stack's HTTP API: cadenza dev's URL or a deployed ApiUrl "
             "(default: $CADENZA_ADDRESS or http://127.0.0.1:7933)")
    parser.add_argument("--port", type=_port, default=DEFAULT_UI_PORT,
                        help=f"port to serve the UI on (default {DEFAULT_UI_PORT}; 0: any free)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1: this machine only)")
    parser.set_defaults(func=_run_from_args)
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535)")
    return value


def _run_from_args(args: argparse.Namespace) -> int:
    return run_ui(address=args.address, port=args.port, host=args.host)


def run_ui(*, address: str, port: int = DEFAULT_UI_PORT, host: str = "127.0.0.1") -> int:
    """Serve the UI until Ctrl-C; 2 when the port cannot be had."""
    from werkzeug.serving import make_server

    from ..ui import LOOPBACK_HOSTS, wsgi_app

    # Served on this machine only, the UI answers to its loopback names (a DNS-rebound name
    # is refused); on another interface, to whatever name reaches it.
    app = wsgi_app(address, allowed_hosts=LOOPBACK_HOSTS if host in LOOPBACK_HOSTS else None)
    try:
        server = make_server(host, port, app, threaded=True)
    except (OSError, SystemExit) as error:  # werkzeug exits when the port is taken
        errors.print(f"[bold red]cadenza ui could not start[/]: port {port} on {escape(host)}: "
                     f"{escape(str(error) or 'in use')}. Use --port to choose another port.")
        app.close()
        return 2
    url = f"http://{_display_host(host)}:{server.server_port}/"
    console.print(f"[bold green]cadenza ui[/] on [bold]{url}[/]  (API: {escape(address)})\n"
                  "Ctrl-C stops it.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.close()
    console.print("stopped.")
    return 0


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host
