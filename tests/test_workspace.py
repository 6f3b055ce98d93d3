"""convkit.ops.workspace: buffers reused once free, never while an array refers to them."""

import subprocess
import sys

import numpy as np

from convkit.ops import workspace


def test_a_buffer_is_reused_only_when_nothing_refers_to_it():
    a = workspace.empty((300, 300), np.float32)
    view = a[10:20]                       # keeps a's buffer busy after a is gone
    address = a.ctypes.data
    del a
    b = workspace.empty((300, 300), np.float32)
    assert b.ctypes.data != address
    del view
    c = workspace.empty((300, 300), np.float32)
    assert c.ctypes.data == address
    assert not np.shares_memory(b, c)


def test_small_arrays_and_other_dtypes_and_shapes():
    small = workspace.empty((4, 4), np.float64)
    assert small.shape == (4, 4) and small.dtype == np.float64 and small.base is None
    z = workspace.zeros((100, 200), np.float64)
    assert z.shape == (100, 200) and z.flags.c_contiguous and not z.any()
    ints = workspace.empty((160, 100), np.int64)   # same bytes as z: z is alive, so another buffer
    assert ints.dtype == np.int64 and not np.shares_memory(ints, z)


def test_free_buffers_beyond_the_limit_are_released(monkeypatch):
    monkeypatch.setattr(workspace, "LIMIT", 1 << 20)
    for n in range(20):                    # 20 different sizes of 160 kB and up, each freed at once
        workspace.empty((40_000 + n,), np.float32)
    assert workspace.pooled_bytes() <= (1 << 20) + 4 * 40_019


FAULTS_SCRIPT = """
import resource, numpy as np
from convkit.ops import workspace
def faults(allocate):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        allocate((4 << 20,), np.float32).fill(1)   # 16 MiB, freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults(workspace.empty)
print(faults(np.empty), faults(workspace.empty))
"""


def test_repeated_large_arrays_fault_their_pages_in_once():
    """In a fresh process: numpy's arrays fault every page each time, the workspace's are already mapped."""
    out = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], capture_output=True, text=True, check=True)
    fresh, pooled = (int(v) for v in out.stdout.split())
    assert fresh >= 100 and pooled < fresh // 20


def test_copy_is_a_contiguous_independent_copy():
    a = np.arange(60_000, dtype=np.float64).reshape(200, 300).T   # non-contiguous
    b = workspace.copy(a)
    assert b.flags.c_contiguous and np.array_equal(a, b) and not np.shares_memory(a, b)
