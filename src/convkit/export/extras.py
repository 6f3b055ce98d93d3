"""The optional packages the exporters need, imported when first used, with the command that installs them."""

from __future__ import annotations

import importlib

INSTALL = {
    "onnx": "pip install 'convkit[export]'",
    "onnxruntime": "pip install 'convkit[export]'",
    "torch": "pip install torch --index-url https://download.pytorch.org/whl/cpu (or your platform's build "
             "from pytorch.org)",
}


def require(package: str, needed_by: str):
    """Import ``package`` for ``needed_by``; an ImportError that names the pip command if it is not installed.

    >>> require("math", "a doctest").sqrt(4.0)
    2.0
    """
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ImportError(f"{needed_by} needs {package}: {INSTALL.get(package, f'pip install {package}')}") from None
