"""The tool's version, recorded in every certificate and trained dictionary."""

__version__ = "0.1.0"
