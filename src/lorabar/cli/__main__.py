"""``python -m lorabar.cli``: the ``lorabar`` command."""

from .main import main

raise SystemExit(main())
