"""``python -m provkit.cli`` runs the provkit command line."""

from provkit.cli.main import main

main()
