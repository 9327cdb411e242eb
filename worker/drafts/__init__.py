"""Drafts on due follow-ups: generated once per (follow-up, due time), sent in one click, once."""
