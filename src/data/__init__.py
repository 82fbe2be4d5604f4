"""Data sets, each a DataModule that ``src.data.sources.build_datamodule`` picks by ``data.name``.

Battery (DyAD): ``battery`` (the DataModule), ``layout`` (the release's files), ``safe_load``
(its pickles, never unpickling code), ``cache`` (packed snippets), ``normalizer``, ``split`` (the
five-fold by-vehicle protocol), ``sampling`` (the training sampler); the synthetic generator
``synth`` / ``synth_physics``. Images: ``images`` (CIFAR-10 files, scikit-learn's digits) and
``image_sources``.
"""
