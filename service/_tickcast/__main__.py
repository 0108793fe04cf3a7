"""``python -m tickcast`` is the ``tickcast`` command."""

import sys

from tickcast.service.cli import main

sys.exit(main())
