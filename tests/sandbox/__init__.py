"""Tests of the Leadterra sandbox (leadterra_sandbox)."""
