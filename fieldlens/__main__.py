"""`python -m fieldlens` runs the CLI."""

from fieldlens.cli import main

main()
