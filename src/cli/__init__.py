"""What the entry points share: Hydra set-up (resolvers, the registries' defaults as configs), the
translation of a composed config into typed specs, the error wrapper, the sweep callback.

This package and the entry points (``src.train``, ``src.leaderboard``, ``src.reproduce``) are the
only readers of the Hydra config; everything below them takes specs.
"""

from src.cli.hydra_setup import register_configs

register_configs()
