"""The second path: replies read from `GET /v1/replies` (the reconcile sweep, backfill)."""
