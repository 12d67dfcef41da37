"""`python -m changeapi.cli`: the same as the `schemagate` console script."""

import sys

from changeapi.cli.main import main

sys.exit(main())
