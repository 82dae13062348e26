"""`python -m <package>` runs the command-line interface."""

from .cli import run

run()
