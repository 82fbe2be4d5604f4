"""Hydra plugins of this project (Hydra instantiates plugins only from ``hydra_plugins``)."""
