"""Data sets: the DyAD release reader and cache, the synthetic generator, DataModules
(``src.data.sources.build_datamodule`` picks one by ``data.name``)."""
