"""The ground floor: errors, the registry helper, metric specs, the run schema, project paths,
run lifecycle and progress, and torch's thread setting (``threads``, the one module here that
imports torch: reports read the schema without it).

Nothing here imports another package of ``src``.
"""
