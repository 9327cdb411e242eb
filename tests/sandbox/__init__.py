"""Tests of the Leadterra sandbox (worker/sandbox)."""
