"""FieldLens command line: the whole pipeline without Discord."""

__version__ = "0.1.0"
