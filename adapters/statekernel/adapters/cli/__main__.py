"""``python -m statekernel.adapters.cli``."""

import sys

from statekernel.adapters.cli import main

sys.exit(main())
