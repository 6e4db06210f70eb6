"""What the benchmarks share: timing one command, failing loudly when it fails."""

from __future__ import annotations

import subprocess
import sys
import time


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time of ``argv`` in seconds; a failed run ends the benchmark with its error."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv[:3])} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed
