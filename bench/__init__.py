"""Benchmarks of the receiver, the workers and beat on this machine: `python -m bench`."""
