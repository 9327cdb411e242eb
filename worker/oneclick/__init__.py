"""One-click actions on a due follow-up's draft: signed links (links.py) and Slack's signed
button requests (slack_auth.py). Both are pure checks; the web routes that serve them act."""
