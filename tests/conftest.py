"""Shared test setup: tests/ on sys.path (for oracle.py, synthetic.py) and the float64 fixture."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def float64():
    """convkit and torch both create float64 parameters for the duration of a test."""
    import torch

    import convkit

    previous = convkit.get_default_dtype()
    convkit.set_default_dtype(np.float64)
    torch.set_default_dtype(torch.float64)
    yield
    convkit.set_default_dtype(previous)
    torch.set_default_dtype(torch.float32)
