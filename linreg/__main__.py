"""``python -m linreg ...``: the ``linreg`` command."""

from __future__ import annotations

import sys

from linreg.main import main

if __name__ == "__main__":
    sys.exit(main())
