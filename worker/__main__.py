"""`python -m worker`: the same console script as `leadrouter`."""

from worker.cli.main import main

main()
