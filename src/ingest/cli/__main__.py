from __future__ import annotations

import sys

from ingest.cli.app import main

sys.exit(main())
