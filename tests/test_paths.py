"""cache_dir and find_cifar10: explicit path, RNNSCOPE_DATA, cache folder, in that order."""

import platformdirs
import pytest

from core.errors import DataError
from core.paths import cache_dir, find_cifar10, resolve_source
from tests.cifar_fixtures import write_cifar_folder, write_cifar_tarball


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNSCOPE_DATA", raising=False)


def test_cache_dir_env_override_and_default(tmp_path, monkeypatch):
    assert cache_dir() == tmp_path / "cache"
    assert not (tmp_path / "cache").exists()  # cache_dir() does not create anything
    monkeypatch.delenv("RNNSCOPE_CACHE")
    assert str(cache_dir()) == platformdirs.user_cache_dir("rnnscope", appauthor=False)


def test_nothing_configured_returns_none():
    assert find_cifar10() is None


def test_explicit_tarball_folder_and_parents(tmp_path):
    tar = write_cifar_tarball(tmp_path / "a", n_per_batch=10)
    folder = write_cifar_folder(tmp_path / "b", n_per_batch=10)
    assert find_cifar10(tar) == tar.resolve()
    assert find_cifar10(tmp_path / "a") == tar.resolve()          # folder holding the tarball
    assert find_cifar10(folder) == folder.resolve()                # the extracted folder
    assert find_cifar10(tmp_path / "b") == folder.resolve()        # folder holding it
    assert find_cifar10(str(folder)) == folder.resolve()           # str works too


def test_renamed_tarball_and_folder_are_accepted(tmp_path):
    tar = write_cifar_tarball(tmp_path, n_per_batch=10, name="my-copy.tgz")
    assert find_cifar10(tar) == tar.resolve()
    folder = write_cifar_folder(tmp_path / "x", n_per_batch=10)
    renamed = folder.rename(tmp_path / "batches")
    assert resolve_source(renamed) == renamed.resolve()


def test_env_then_cache(tmp_path, monkeypatch):
    cached = write_cifar_tarball(tmp_path / "cache", n_per_batch=10)
    assert find_cifar10() == cached.resolve()
    env_folder = write_cifar_folder(tmp_path / "env", n_per_batch=10)
    monkeypatch.setenv("RNNSCOPE_DATA", str(tmp_path / "env"))
    assert find_cifar10() == env_folder.resolve()                  # env beats the cache
    explicit = write_cifar_tarball(tmp_path / "explicit", n_per_batch=10)
    assert find_cifar10(explicit) == explicit.resolve()            # explicit beats env


def test_cache_extracted_folder_is_found(tmp_path):
    folder = write_cifar_folder(tmp_path / "cache", n_per_batch=10)
    assert find_cifar10() == folder.resolve()


def test_wrong_explicit_path_is_an_error_not_a_fallback(tmp_path):
    write_cifar_tarball(tmp_path / "cache", n_per_batch=10)  # would be found otherwise
    missing = tmp_path / "nope.tar.gz"
    with pytest.raises(DataError, match="does not exist") as err:
        find_cifar10(missing)
    assert str(missing) in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds neither"):
        find_cifar10(tmp_path / "empty")


def test_wrong_env_path_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSCOPE_DATA", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="RNNSCOPE_DATA"):
        find_cifar10()
