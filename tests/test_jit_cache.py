"""convkit's kernels are cached under one stamp of all kernel sources (a changed helper module recompiles all)."""

import hashlib

import numpy as np

import convkit.functional as F
from convkit.ops import activation, jit, pooling


def test_kernels_use_convkits_stamped_locator_and_the_stamp_covers_every_kernel_source():
    F.relu(np.ones((2, 3), np.float32))
    F.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2)
    kernels = [v for module in (activation, pooling) for v in vars(module).values() if hasattr(v, "_cache")]
    assert kernels
    for k in kernels:
        locator = k._cache._impl.locator
        assert type(locator).__name__.startswith("Convkit") and locator.get_source_stamp() == jit._STAMP
    digest = hashlib.sha256()
    for package in jit.KERNEL_PACKAGES:
        for path in sorted((jit._CONVKIT / package).rglob("*.py")):
            digest.update(str(path.relative_to(jit._CONVKIT)).encode() + path.read_bytes())
    assert digest.digest() == jit._STAMP


def test_functions_outside_convkit_keep_numbas_own_locators(tmp_path):
    import numba
    from numba.core.caching import CacheImpl

    source = tmp_path / "userkernel.py"
    source.write_text("def f(x):\n    return x + 1\n")
    namespace = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    f = numba.njit(cache=True)(namespace["f"])
    assert f(1) == 2
    assert not type(f._cache._impl.locator).__name__.startswith("Convkit")
    assert any(c.__name__ == "InTreeCacheLocator" for c in CacheImpl._locator_classes)
