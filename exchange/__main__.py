from __future__ import annotations

import sys

from exchange.cli import main

sys.exit(main())
