"""FieldLens command line: the whole pipeline without Discord."""

from storage import __version__

__all__ = ["__version__"]
