"""`python -m shammah_tui` runs the same CLI as the `shammah-tui` script."""

import sys

from shammah_tui.cli import main

sys.exit(main())
