"""What the entry points share: Hydra set-up (``resolvers``: the resolvers every config uses;
``hydra_setup``: the registries' defaults as configs), the translation of a composed config into
typed specs (``specs``), the error wrapper (``entry``), in-process train jobs (``jobs``) and the
sweep callback (``sweep``).

This package and the entry points are the only readers of the Hydra config; everything below
them takes specs. Importing it registers nothing: each entry point calls the set-up it needs.
"""
