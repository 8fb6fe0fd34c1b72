#!/usr/bin/env python3
"""Reads the checkpoint that test_checkpoint wrote for numpy and checks its contents.

Exits 77 (CTest's skip code here) when numpy is not installed.
"""
import sys

try:
    import numpy as np
except ImportError:
    print("numpy is not installed: skipped")
    sys.exit(77)

path = sys.argv[1]
with np.load(path) as f:
    names = sorted(f.files)
    assert names == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"], names
    w = f["fc1.weight"]
    assert w.dtype == np.float32 and w.shape == (3, 4), (w.dtype, w.shape)
    expected = np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5  # set by the C++ test
    assert np.array_equal(w, expected), w
print("numpy read", path, ":", ", ".join(names))
