"""``python -m claudine_tui``: the same entry point as the ``claudine`` command."""

import sys

from claudine_tui.cli.main import main

sys.exit(main())
