"""``python -m cluster.cli``: the ``betml`` command without its console script (Ray jobs run it)."""

from cluster.cli import main

main()
