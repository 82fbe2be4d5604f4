"""The ground floor: errors, the registry helper, metric specs, the run schema, project paths.

Nothing here imports another package of ``src``.
"""
