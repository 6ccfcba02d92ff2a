"""Test environments side by side: the same three workflows in Cadenza's
``cadenza.testing.TestWorkflowEnvironment`` and in its peers' test environments.

``python -m bench.peers`` runs every runner (each in a fresh Python process, one after another),
prints a Markdown table and replaces the section "## Test environments side by side" of
bench/RESULTS.md. The peers' packages come with the ``bench`` extra
(``pip install -e '.[dev,bench]'``); a runner whose package or binary is missing is reported as
not run, with the reason, and so is Cadenza's own while ``cadenza.testing`` cannot be imported.

Figures are what this machine measured; nothing asserts them.
"""

from __future__ import annotations

import importlib
from typing import Any

#: runner name -> "module:attribute" of its Peer, in the order the results list them
PEERS: dict[str, str] = {
    "ours": "bench.peers.ours:PEER",
    "cadence": "bench.peers.cadence_client:PEER",
    "aws": "bench.peers.aws_durable:PEER",
    "temporal": "bench.peers.temporal:PEER",
    "temporal-v2": "bench.peers.temporal:PEER_V2",
}


def load_peer(name: str) -> tuple[Any | None, str | None]:
    """The Peer called ``name`` and None, or None and why it cannot run here."""
    module_name, attribute = PEERS[name].split(":")
    try:
        peer = getattr(importlib.import_module(module_name), attribute)
    except ImportError as error:
        return None, f"cannot import {module_name} ({error})"
    reason = peer.unavailable()
    return (None, reason) if reason else (peer, None)
