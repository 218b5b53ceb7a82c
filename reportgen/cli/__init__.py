"""The command line: ``reportgen audit | validate | schema | render | metrics`` and the
integrity commands (``keygen``, ``verify``, ``modelcard``, ``archive``). Only this package
prints."""

from reportgen.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
