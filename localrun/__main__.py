"""`python -m localrun`: see localrun/cli.py."""

import sys

from localrun.cli import main

sys.exit(main())
