"""FCU directories: API argument, then FCU_HOME_DIR, FCU_RESOURCES_DIR, FCU_KEYSTORE_DIR, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from provkit.codes import FcuErrorCode
from provkit.errors import ConfigError
from provkit.factory import FactoryToolApi
from provkit.factory.paths import FcuPaths


def test_defaults_are_cwd_and_its_subdirectories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No arguments, no environment: cwd, <home>/resources, <home>/keystore, <home>/config/fcu.yml."""
    monkeypatch.chdir(tmp_path)
    for name in ("FCU_HOME_DIR", "FCU_RESOURCES_DIR", "FCU_KEYSTORE_DIR"):
        monkeypatch.delenv(name, raising=False)
    paths = FactoryToolApi().paths
    home = tmp_path.resolve()
    assert (paths.home, paths.resources, paths.keystore) == (home, home / "resources", home / "keystore")
    assert paths.config_file == home / "config" / "fcu.yml"
    assert (
        paths.ca_key == home / "keystore" / "fcu_key.pem" and paths.ca_cert == home / "keystore" / "fcu.crt"
    )


def test_environment_then_arguments(tmp_path: Path) -> None:
    """The environment overrides the defaults; an API argument overrides the environment."""
    env = {
        "FCU_HOME_DIR": str(tmp_path / "env-home"),
        "FCU_RESOURCES_DIR": str(tmp_path / "env-res"),
        "FCU_KEYSTORE_DIR": str(tmp_path / "env-ks"),
    }
    from_env = FcuPaths.resolve(environ=env)
    assert from_env.home == tmp_path / "env-home"
    assert (from_env.resources, from_env.keystore) == (tmp_path / "env-res", tmp_path / "env-ks")
    assert from_env.config_file == tmp_path / "env-home" / "config" / "fcu.yml"
    only_home = FcuPaths.resolve(environ={"FCU_HOME_DIR": str(tmp_path / "h")})
    assert (only_home.resources, only_home.keystore) == (
        tmp_path / "h" / "resources",
        tmp_path / "h" / "keystore",
    )
    given = FcuPaths.resolve(tmp_path / "a", tmp_path / "r", tmp_path / "k", tmp_path / "c.yml", environ=env)
    assert (given.home, given.resources, given.keystore, given.config_file) == (
        tmp_path / "a",
        tmp_path / "r",
        tmp_path / "k",
        tmp_path / "c.yml",
    )


def test_directory_name_with_nul_byte_is_190() -> None:
    """A directory argument no path can have (a NUL byte) is 190, not a ValueError."""
    with pytest.raises(ConfigError) as info:
        FactoryToolApi(keystore_dir="key\x00store")
    assert info.value.code == FcuErrorCode.CONFIG_LOAD_FAILED
