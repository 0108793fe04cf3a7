"""A process that trains keeps freed arrays for reuse (service/run/tasks.py's tune_process): glibc's
malloc would otherwise return each large freed block to the kernel and fault it back in, zeroed,
on the next allocation (bench/malloc.py: ~20,000 page faults and a tenth of a fit's time)."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys

import pytest

PROBE = """
import json, resource, sys
import numpy as np
if sys.argv[1] == "train":
    from tickcast.service.run.tasks import train_series
    from tickcast.service.run.values import SeriesTask
    params = {"epochs": 1, "season_length": 1, "seed": 0}
    task = SeriesTask("csv:x", 1, np.linspace(10.0, 20.0, 60), params, 2, (0.8,), ("rnn", "ets", "theta"))
    result = train_series(task)
    assert result.status == "ok", result.error
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(100):  # what a fit does: several arrays of 1 MiB at once, all freed again
    arrays = [np.ones(2 ** 17) for _ in range(8)]
    del arrays
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def page_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def glibc() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "mallopt") and bool(ctypes.CDLL(None).gnu_get_libc_version)
    except (OSError, AttributeError):
        return False


@pytest.mark.skipif(not glibc(), reason="malloc thresholds are glibc's")
def test_a_process_that_has_trained_reuses_freed_arrays_instead_of_faulting_them_in_again():
    untouched, trained = page_faults("plain"), page_faults("train")
    assert untouched > 50_000  # up to 100 x 8 x 256 pages: the arrays come back from the kernel
    assert trained < untouched / 20, (trained, untouched)
