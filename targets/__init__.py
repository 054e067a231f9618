"""The apps under test and the registry of named targets (app + server + settings).

Nothing here imports from ``harness``: the apps stand alone, as a user would deploy them.
"""
