"""`python -m quickdapp.workers`: one worker process, as the supervisor starts it (settings on stdin)."""

import sys

from quickdapp.workers.process import main

sys.exit(main())
