#!/usr/bin/env python3
"""Writes tests/data/numpy_written.npz with numpy.savez, for test_checkpoint to read.

Run with Debian's python3 and python3-numpy:  /usr/bin/python3 tests/data/make_numpy_fixture.py
"""
import os

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
np.savez(
    os.path.join(here, "numpy_written.npz"),
    **{
        "fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,  # (in, out)
        "fc.bias": np.array([0.5, -1.25, 3.0], dtype=np.float64),  # converts to float32
    },
)
