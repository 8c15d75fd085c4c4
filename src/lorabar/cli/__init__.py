"""The ``lorabar`` command line (`lorabar.cli.main`; one module per subcommand)."""

from __future__ import annotations

from .main import EXIT_CODES, build_parser, exit_code, main

__all__ = ["EXIT_CODES", "build_parser", "exit_code", "main"]
