"""Epoch arithmetic: epoch ``e`` covers ``[genesis + e*length, genesis + (e+1)*length)``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EpochClock:
    genesis: int
    length: int
    now: Callable[[], float] = field(default=time.time, compare=False)

    def __post_init__(self) -> None:
        if self.length <= 0:
            raise ValueError("epoch length must be positive")

    def epoch_at(self, timestamp: float) -> int:
        if timestamp < self.genesis:
            return 0
        return int((timestamp - self.genesis) // self.length)

    def current(self) -> int:
        return self.epoch_at(self.now())

    def start_of(self, epoch: int) -> int:
        return self.genesis + epoch * self.length

    def end_of(self, epoch: int) -> int:
        return self.start_of(epoch + 1)

    def closed_through(self, grace_s: float = 0.0) -> int:
        """Highest epoch that ended at least ``grace_s`` ago; -1 if none has."""
        return (
            self.epoch_at(self.now() - grace_s) - 1 if self.now() - grace_s >= self.genesis else -1
        )
