"""Celery's side: the app, the poison-proof transport, the tasks under one failure policy, the
messages the receiver writes, retries, the delayed set, holds and dead letters."""
