"""Tools to test odop on one machine: a virtual cluster (``python -m odop.testing.cluster``)."""
