"""A stand-in for the ``os`` module whose writes fail with ENOSPC once a byte budget is spent
(patched into auditor.files to play a disk that fills up mid-write)."""

from __future__ import annotations

import errno
import os
from typing import Any


class FullOs:
    """``os`` for auditor.files whose write fails with ENOSPC after ``budget`` bytes."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: Any) -> int:
        if self.budget <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = os.write(fd, bytes(data[: self.budget]))
        self.budget -= n
        return n
