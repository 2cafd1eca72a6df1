"""Keeps a ``LocalDevnet`` alive in the background for ``pictor devnet up`` / ``down``.

    python -m node.devnet.supervisor DIR WORKERS CHECKERS

Writes ``DIR/devnet.json`` once every node is ready and removes it after a
clean stop; SIGTERM or SIGINT stops the nodes, then anvil.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from node.devnet.network import DevnetConfig, LocalDevnet

STATE_FILE = "devnet.json"


def main(argv: list[str]) -> int:
    base, workers, checkers = Path(argv[0]), int(argv[1]), int(argv[2])
    # Handlers, not a blocked mask: children inherit a signal mask, and nodes must
    # still hear the SIGTERM that stops them.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    net = LocalDevnet(base, DevnetConfig(workers=workers, checkers=checkers, lease_s=60.0))
    net.start()
    try:
        state = {**net.state(), "supervisor_pid": os.getpid()}
        tmp = base / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(base / STATE_FILE)
        stop.wait()
    finally:
        net.stop()
        (base / STATE_FILE).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
