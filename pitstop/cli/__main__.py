"""``python -m pitstop.cli``: the same as the ``pitstop`` command."""

from pitstop.cli.app import main

main()
