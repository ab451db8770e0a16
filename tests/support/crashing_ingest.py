"""`pitstop ingest` that SIGKILLs itself after its first roll's writes, before the commit (crash tests).

    python tests/support/crashing_ingest.py REPO

The hook lives here, not in pitstop's settings: production code cannot be told to crash.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pitstop import FeatureStore  # noqa: E402
from pitstop.ingestion import Ingester  # noqa: E402


class CrashingIngester(Ingester):
    def _before_commit(self) -> None:
        print(f"fault injection: SIGKILL after roll {self.rolls()}'s writes, before committing "
              f"{len(self.pending_offsets())} partition offset(s)", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # like kill -9: no commit, no LeaveGroup, no cleanup


if __name__ == "__main__":
    with FeatureStore(sys.argv[1]) as store:
        CrashingIngester(store, None).run()
