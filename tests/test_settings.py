import pytest

from km_search.settings import Settings


def test_settings_come_from_km_environment_variables(monkeypatch):
    monkeypatch.setenv("KM_CHUNK_WORDS", "123")
    monkeypatch.setenv("KM_FUSION", "rrf")
    settings = Settings()
    assert settings.chunk_words == 123 and settings.fusion == "rrf"


def test_a_bad_value_is_refused_with_the_setting_named(monkeypatch):
    monkeypatch.setenv("KM_DENSE_WEIGHT", "2")
    with pytest.raises(ValueError, match="dense_weight"):
        Settings()
