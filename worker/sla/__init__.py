"""The SLA watch after a handoff: the working-hours clock that says how long an SDR has had a
reply and when a reminder or the SLA falls due."""
