from pathlib import Path

import pytest

from km_search.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented_in_the_readme(name):
    assert f"`KM_{name.upper()}`" in README, f"KM_{name.upper()} is missing from README's configuration table"


def test_settings_come_from_km_environment_variables(monkeypatch):
    monkeypatch.setenv("KM_CHUNK_WORDS", "123")
    monkeypatch.setenv("KM_FUSION", "rrf")
    settings = Settings()
    assert settings.chunk_words == 123 and settings.fusion == "rrf"


def test_a_bad_value_is_refused_with_the_setting_named(monkeypatch):
    monkeypatch.setenv("KM_DENSE_WEIGHT", "2")
    with pytest.raises(ValueError, match="dense_weight"):
        Settings()
