"""A feature whose optional dependencies are missing fails with one line naming the extra."""

from __future__ import annotations

import pytest

from pitstop.errors import ConfigError, MissingExtraError
from pitstop.extras import require_extra


def test_a_missing_module_names_the_extra_and_the_pip_command() -> None:
    with pytest.raises(MissingExtraError) as info:
        require_extra("serve", "pitstop serve", "json", "surely_not_installed_module")
    message = str(info.value)
    assert message == ("pitstop serve needs the 'serve' extra (surely_not_installed_module not installed): "
                       "pip install 'pitstop[serve]'")
    assert "\n" not in message and isinstance(info.value, ConfigError)


def test_installed_modules_pass_without_being_imported() -> None:
    import sys

    sys.modules.pop("this", None)
    require_extra("demo", "the demo", "this")  # the Zen of Python prints on import: find_spec must not import it
    assert "this" not in sys.modules


def test_the_spark_engine_without_pyspark_names_its_extra(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from pitstop.offline.factory import open_offline_engine
    from pitstop.settings import OfflineStoreSettings

    real = importlib.util.find_spec
    monkeypatch.setattr("pitstop.extras.find_spec", lambda name: None if name == "pyspark" else real(name))
    with pytest.raises(MissingExtraError, match=r"the Spark offline engine needs the 'spark' extra .*pitstop\[spark\]"):
        open_offline_engine(OfflineStoreSettings(engine="spark"))
