"""Read and validate: one reader per input kind (kinds.py), Great Expectations suites, the load
log and quarantine (load.py).
"""
