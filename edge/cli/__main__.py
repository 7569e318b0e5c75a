"""``python -m gedge.cli``."""

from gedge.cli.app import main

main()
