"""The `leadrouter` console script: the processes, run and demo, and operator commands."""
