"""The search under an accuracy budget (``python -m src.search``): ``loop`` (Optuna asks, the
sweep's launcher runs each trial as a ``src.train`` job), ``scoring`` (objectives, goals, verdicts
and the Pareto front read from a trial's run), ``report`` (what a search leaves on its parent
run), ``app`` (the Hydra app: a trial's job and the sweep) and ``__main__`` (the entry).

The only importer of Optuna. Importing the package imports nothing else; ``scoring`` is light
(no Optuna, no torch), the rest is the search's.
"""
