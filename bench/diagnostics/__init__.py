"""Opt-in diagnostics, run only when named: `python -m bench profile gc`.

They explain a figure rather than measure the service: `profile` (py-spy on the receiver and a
worker, with `profiling.py` reading the stacks and `monitor.py` attributing Redis commands to
processes) and `gc` (`gcpause.py`, the receiver's collector pauses, run through `gcprobe.py`).
"""
