"""One thread setting for convkit's kernels and matrix products; NumPy's BLAS stays on one thread."""

import os
import subprocess
import sys

import numba
import pytest
import threadpoolctl

import convkit
import convkit.backends as backends


def blas_threads() -> set[int]:
    """Thread counts of NumPy's BLAS (a library under numpy's own directory; other packages' BLAS, loaded
    later by torch or SciPy, are theirs to set)."""
    found = {i["num_threads"] for i in threadpoolctl.threadpool_info()
             if i["user_api"] == "blas" and "numpy" in i["filepath"]}
    assert found, "NumPy's BLAS not found among the loaded libraries"
    return found


def test_set_num_threads_sets_kernel_threads_and_keeps_blas_on_one():
    previous = convkit.get_num_threads()
    try:
        assert blas_threads() == {1}                  # set when convkit was imported
        convkit.set_num_threads(1)
        assert convkit.get_num_threads() == numba.get_num_threads() == 1
        with backends.num_threads(numba.config.NUMBA_NUM_THREADS):
            assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
            assert blas_threads() == {1}
        assert convkit.get_num_threads() == 1 and blas_threads() == {1}
    finally:
        convkit.set_num_threads(previous)


@pytest.mark.parametrize("bad", [0, -1, 10_000, 1.5, True, "2"])
def test_set_num_threads_rejects_bad_counts_naming_the_range(bad):
    with pytest.raises(ValueError, match=r"set_num_threads: n must be an int from 1 to \d+"):
        convkit.set_num_threads(bad)


def test_starting_the_kernel_pool_leaves_the_environment_as_it_was():
    """ops.jit sets OMP_WAIT_POLICY only while numba's OpenMP library loads (other OpenMP copies keep theirs)."""
    code = ("import os; import convkit, numba; "
            "print(os.environ.get('OMP_WAIT_POLICY'), numba.threading_layer())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    policy, layer = out.split()
    assert policy == "None" and layer in ("omp", "workqueue", "tbb")
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "ACTIVE"
