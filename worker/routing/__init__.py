"""Which SDR gets a reply and the handoff itself: rotation (one Lua call), roster and policy,
mailbox health, working hours, the assign flow and the backtest."""
