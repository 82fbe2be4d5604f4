"""Data sets. ``build_datamodule(cfg)`` picks the builder named by ``data.name``."""

from __future__ import annotations

from src.data.sources import DATAMODULES, build_datamodule

__all__ = ["DATAMODULES", "build_datamodule"]
