"""The one registry helper: ``python -m pytest tests/core/test_registry.py``."""

import pytest

from src.core.errors import ConfigError
from src.core.registry import Registry


def test_register_get_names_and_the_error_that_lists_the_choices():
    things = Registry("thing", hint="thing=NAME")

    @things.register()
    def alpha():
        return "a"

    things.register("beta", "gamma")(lambda: "b")
    assert things.get("alpha") is alpha and things.names() == ["alpha", "beta", "gamma"]
    assert "beta" in things and list(things) == ["alpha", "beta", "gamma"]
    assert things.names("g") == ["gamma"]
    with pytest.raises(
        ConfigError, match=r"Unknown thing 'delta'; choose from \['alpha'.*thing=NAME"
    ):
        things.get("delta")
    with pytest.warns(UserWarning, match="registered twice"):
        things.add("alpha", alpha)
