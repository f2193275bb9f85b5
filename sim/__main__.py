"""``python -m sim``: the mailflow command."""

from .faces.cli import main

main()
