"""The fault matrix: full orchestrated runs on the local stack with faults injected, checked against invariants.

`python -m faultmatrix` runs every scenario and prints, per scenario, the records expected, written, lost and
duplicated, the partitions accounted for and the verdict; `tests/faults/` runs the same scenarios under pytest.
"""
