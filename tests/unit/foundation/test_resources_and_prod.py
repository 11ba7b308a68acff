"""Packaged resources are found the one way, and prod refuses development secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kuekan.kit.resources import (
    ResourceMissingError,
    config_dir,
    functions_dir,
    korat_data_dir,
    migrations_dir,
)
from kuekan.settings import SettingsError, load_settings, unsafe_for_prod

STRONG = "k" * 40


def test_package_data_is_found_without_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KUEKAN_CONFIG_DIR", "KUEKAN_MIGRATIONS_DIR", "KUEKAN_FUNCTIONS_DIR",
                "KUEKAN_KORAT_DATA"):
        monkeypatch.delenv(var, raising=False)
    assert (config_dir() / "prod.toml").is_file()
    assert len(list(migrations_dir().glob("*.sql"))) >= 11
    assert (functions_dir() / "kk_award.sql").is_file()
    korat = korat_data_dir()
    assert {p.name for p in korat.iterdir()} >= {
        "districts.geojson", "subdistricts.geojson", "SOURCE.md"}


def test_an_override_that_holds_nothing_fails_naming_what_it_looked_for(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUEKAN_MIGRATIONS_DIR", str(tmp_path))
    with pytest.raises(ResourceMissingError, match=r"\[0-9\]\*\.sql not found.*KUEKAN_MIGRATIONS"):
        migrations_dir()
    monkeypatch.setenv("KUEKAN_CONFIG_DIR", str(tmp_path / "missing"))
    with pytest.raises(ResourceMissingError, match=r"base\.toml"):
        load_settings("dev")


def test_an_unknown_environment_is_refused() -> None:
    with pytest.raises(SettingsError, match="KUEKAN_ENV='staging'"):
        load_settings("staging")


def _prod(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for name, value in env.items():
        monkeypatch.setenv(f"KUEKAN_{name.upper()}", value)
    return unsafe_for_prod(load_settings("prod"))


def _safe_env() -> dict[str, str]:
    return {"jwt_keys": f"k2026:{STRONG}", "jwt_active_kid": "k2026",
            "line_channel_secret": "a-real-channel-secret", "line_channel_id": "2001234567",
            "privacy_pseudonym_salt": STRONG,
            "database_url": "postgresql://kuekan_api@db/kuekan",
            "migrate_database_url": "postgresql://kuekan_owner@db/kuekan"}


def test_prod_with_real_secrets_is_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _prod(monkeypatch, **_safe_env()) == []


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("jwt_keys", "dev1:dev-secret-change-me-0123456789abcdef", "development default"),
    ("jwt_keys", "k2026:short", "shorter than 32 bytes"),
    ("jwt_active_kid", "dev-1", "names no key"),
    ("line_channel_secret", "line-dev-channel-secret", "LINE_CHANNEL_SECRET"),
    ("line_channel_id", "1650000000", "LINE_CHANNEL_ID"),
    ("privacy_pseudonym_salt", "dev-pseudonym-salt-change-me", "PSEUDONYM_SALT"),
    ("privacy_pseudonym_salt", "short-salt", "shorter than 32 bytes"),
    ("migrate_database_url", "postgresql://kuekan_api@db/kuekan", "MIGRATE_DATABASE_URL"),
])
def test_each_unsafe_setting_is_named(monkeypatch: pytest.MonkeyPatch, field: str, value: str,
                                      reason: str) -> None:
    reasons = _prod(monkeypatch, **{**_safe_env(), field: value})
    assert any(reason in r for r in reasons), reasons


@pytest.mark.parametrize("command", ["serve", "worker", "migrate"])
def test_the_cli_refuses_to_start_prod_with_dev_secrets(command: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUEKAN_")}
    env["KUEKAN_ENV"] = "prod"
    out = subprocess.run([sys.executable, "-m", "kuekan", command], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2, out.stderr
    assert "refusing to run with KUEKAN_ENV=prod" in out.stderr
    assert "JWT key 'dev1' is the development default" in out.stderr
    assert "Traceback" not in out.stderr
