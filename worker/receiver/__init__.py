"""The receiver: Leadterra's webhooks in, one Redis call, 2xx out (web, server, webhook)."""
