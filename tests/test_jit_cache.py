"""convkit's kernels are cached under one stamp of all kernel sources (a changed helper module recompiles all)."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import convkit.functional as F
from convkit.data import loader
from convkit.ops import activation, jit, pooling
from convkit.optim import adam, sgd


def test_kernels_use_convkits_stamped_locator_and_the_stamp_covers_every_kernel_source():
    F.relu(np.ones((2, 3), np.float32))
    F.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2)
    kernels = [v for module in (activation, pooling) for v in vars(module).values() if hasattr(v, "_cache")]
    assert kernels
    for k in kernels:
        locator = k._cache._impl.locator
        assert type(locator).__name__.startswith("Convkit") and locator.get_source_stamp() == jit._STAMP
    digest = hashlib.sha256()
    sources = jit.kernel_sources()
    for path in sources:
        digest.update(str(path.relative_to(jit._CONVKIT)).encode() + path.read_bytes())
    assert digest.digest() == jit._STAMP
    names = {str(p.relative_to(jit._CONVKIT)) for p in sources}
    for module in (activation, pooling, sgd, adam, loader):  # every module holding kernels is stamped
        assert str(Path(module.__file__).relative_to(jit._CONVKIT)) in names
    assert "data/idx.py" not in names and "optim/lr_scheduler.py" not in names


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


FALLBACK_SCRIPT = """
import numpy as np
from numba.core import caching
from convkit.ops import activation, jit
for c in caching.CacheImpl._locator_classes:
    if c.__name__ == "ConvkitInTreeCacheLocator":       # as if the install directory were read-only
        c.ensure_cache_path = lambda self: (_ for _ in ()).throw(PermissionError("read-only"))
relu = jit.kernel(activation._rectify_span.py_func)    # a kernel of convkit's, its cache located anew
x, y = np.ones(4, np.float32), np.empty(4, np.float32)
relu(x, np.float32(0), y, 0, 4)
locator = relu._cache._impl.locator
print(type(locator).__name__, locator.get_cache_path())
"""


def test_a_read_only_install_caches_in_the_user_cache_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["HOME"] = str(tmp_path)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    out = subprocess.run([sys.executable, "-c", FALLBACK_SCRIPT], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "ConvkitUserWideCacheLocator" and out[1].startswith(str(tmp_path))
    assert any(Path(out[1]).glob("activation._rectify_span-*.nbi"))
