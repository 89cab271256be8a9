"""``python -m recurdepth`` (and ``torchrun -m recurdepth``): the ``recurdepth`` command."""

import sys

from recurdepth.cli import main

sys.exit(main())
