"""A worker process of this system without the audit hook (the supervisor starts it).

Everything else is the standard worker: `quickdapp.workers.process.main` with the standard
hooks less the audit trail, so the difference measured is the audit's cost alone.
"""

from __future__ import annotations

import sys
from functools import partial

from quickdapp.workers.hooks import standard_hooks
from quickdapp.workers.process import main

if __name__ == "__main__":
    sys.exit(main(hooks=partial(standard_hooks, audit=False)))
