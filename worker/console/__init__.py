"""The operators' console: panels read from Redis, as JSON (/api/), a page (/) and the CLI."""
