"""``python -m fmrecipes`` (and ``torchrun -m fmrecipes``)."""

import sys

from .cli import main

sys.exit(main())
