"""What the two web apps share: the state, its clock, the faults in force and the call log."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from leadterra_sandbox.calls import CallLog
from leadterra_sandbox.clock import Clock
from leadterra_sandbox.faults import Faults, Outage
from leadterra_sandbox.state import State


@dataclass
class World:
    state: State
    rng: random.Random = field(default_factory=random.Random)
    faults: Faults = field(default_factory=Faults)
    outage: Outage = field(default_factory=Outage)
    calls: CallLog = field(default_factory=CallLog)

    @property
    def clock(self) -> Clock:
        return self.state.clock
