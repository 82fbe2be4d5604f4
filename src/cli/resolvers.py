"""The resolvers every app's config uses: ``${project_root:}`` and ``${default_store:}``.

Light on purpose: the leaderboard needs them and nothing else of the config set-up, so this
imports no model, task or torch (:mod:`src.cli.hydra_setup` registers the registries' configs).
"""

from __future__ import annotations

from omegaconf import OmegaConf

from src.core.paths import ROOT, default_store_uri


def register_resolvers() -> None:
    """Register the resolvers (idempotent: a second call replaces them with the same)."""
    OmegaConf.register_new_resolver("project_root", lambda: str(ROOT), replace=True)
    OmegaConf.register_new_resolver("default_store", default_store_uri, replace=True)
