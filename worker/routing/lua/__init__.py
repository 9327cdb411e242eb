"""The Lua scripts run inside Redis (the rotation's pick)."""
