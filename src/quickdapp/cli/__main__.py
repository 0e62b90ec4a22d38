"""`python -m quickdapp.cli`: the `quickdapp` command (the tests start it so)."""

import sys

from quickdapp.cli import main

sys.exit(main())
