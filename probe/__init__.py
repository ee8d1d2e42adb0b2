"""probe: analyse why a monocular depth architecture under-performs.

The library is organised by concern: ``probe.models`` (registered model zoo),
``probe.ops`` (pack/unpack), ``probe.data`` (synthetic scenes and real dataset
readers), ``probe.losses``, ``probe.metrics``, ``probe.training``; one module
per analysis lives in the top-level ``analyses`` package.
"""

__version__ = "0.1.0"
