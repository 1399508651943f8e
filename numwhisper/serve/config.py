"""How the HTTP service runs: workers and queue, request bounds, input rules, default decoding options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numba

from ..decoding import DecodingOptions
from .sources import SourcePolicy

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServeConfig:
    """How the service runs: workers and queue, request bounds, input rules, default decoding options."""

    workers: int = 1
    queue_size: int = 8
    max_body_bytes: int = 32 * MIB
    threads: Optional[int] = None     # Numba (and BLAS) threads per worker; None: see threads_per_worker
    policy: SourcePolicy = SourcePolicy()
    decoding: DecodingOptions = DecodingOptions()

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.queue_size < 0:
            raise ValueError(f"--queue-size must be >= 0, got {self.queue_size}")
        if self.max_body_bytes < 1:
            raise ValueError(f"--max-body-bytes must be >= 1, got {self.max_body_bytes}")

    @property
    def threads_per_worker(self) -> Optional[int]:
        """``threads``, else the cores shared out among several workers (None: one worker uses every core).

        Workers that each start a thread per core oversubscribe the CPU: their threads take turns on
        the cores, and concurrent requests run slower than with the cores shared out.
        """
        if self.threads is not None or self.workers == 1:
            return self.threads
        return max(1, numba.config.NUMBA_NUM_THREADS // self.workers)

    @property
    def admission_limit(self) -> int:
        """Requests admitted at once (running plus waiting); the next one gets 503."""
        return self.workers + self.queue_size
