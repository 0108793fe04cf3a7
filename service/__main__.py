"""``python -m service`` is the ``tickcast`` command."""

import sys

from .cli import main

sys.exit(main())
