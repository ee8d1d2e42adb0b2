"""``python3 -m probe ...`` runs the same CLI as the ``probe`` console script."""

from cli import main

main()
