"""Due follow-ups: the single-flight poll, the claim per due time, routing, and notifications."""
