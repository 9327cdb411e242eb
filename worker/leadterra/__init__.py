"""Leadterra's API: the one client around one httpx.Client, its tolerant models, the global rate
limit."""
