"""The user and team stores: mbl-cli layout, explicit permissions, atomic writes, locking."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from provkit.developer.fsutil import atomic_write
from provkit.developer.store import TEAM, USER, Store, store_locations
from provkit.errors import StoreError

KEY_VAR = "MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_PRIVATE_KEY"
NOBODY = 65534


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_first_use_writes_default_locations(tmp_path):
    """An absent or empty .mbl-stores.json gets the ~/.mbl-store/{user,team} defaults."""
    assert store_locations(tmp_path) == {
        USER: tmp_path / ".mbl-store" / "user",
        TEAM: tmp_path / ".mbl-store" / "team",
    }
    record = json.loads((tmp_path / ".mbl-stores.json").read_text())
    assert record == {"user": str(tmp_path / ".mbl-store/user"), "team": str(tmp_path / ".mbl-store/team")}
    (tmp_path / ".mbl-stores.json").write_text("")
    assert store_locations(tmp_path)[USER] == tmp_path / ".mbl-store" / "user"


def test_custom_locations_env_and_unknown_type(tmp_path, monkeypatch):
    """A user-written record is honoured, the env var sets the base, other types are refused."""
    (tmp_path / ".mbl-stores.json").write_text(
        json.dumps({"user": str(tmp_path / "u"), "team": str(tmp_path / "t")})
    )
    monkeypatch.setenv("PROVKIT_DEVELOPER_HOME", str(tmp_path))
    assert Store.open(TEAM).location == (tmp_path / "t").resolve()
    with pytest.raises(StoreError, match="store type 'group' not recognised; only user and team") as info:
        Store.open("group")
    assert info.value.code == 6001
    (tmp_path / ".mbl-stores.json").write_text("[1, 2]")
    with pytest.raises(StoreError, match="JSON object"):
        Store.open(USER)


def test_config_layout_is_mbl_cli_compatible(tmp_path):
    """config.json has exactly location, api_key, dev_certs with absolute .bin paths."""
    team = Store.open(TEAM, tmp_path)
    paths = team.add_certificate("dev1", {"MBED_CLOUD_DEV_MANUFACTURER": b"acme", KEY_VAR: b"\x30\x81"})
    config = json.loads(team.config_path.read_text())
    assert config == {
        "location": str(team.location),
        "api_key": "",
        "dev_certs": {
            "dev1": [
                str(team.location / "dev1" / f"{v}.bin") for v in ("MBED_CLOUD_DEV_MANUFACTURER", KEY_VAR)
            ]
        },
    }
    assert [p.read_bytes() for p in paths] == [b"acme", b"\x30\x81"]
    assert team.read_certificate("dev1") == {"MBED_CLOUD_DEV_MANUFACTURER": b"acme", KEY_VAR: b"\x30\x81"}


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
def test_permissions_are_explicit_whatever_the_umask(tmp_path, umask):
    """User 0700/0600; team 0770/0660, private keys included — independent of the umask."""
    old = os.umask(umask)
    try:
        user = Store.open(USER, tmp_path)
        user.set_api_key("  ak_secret \n")
        team = Store.open(TEAM, tmp_path)
        team.add_certificate("dev1", {"MBED_CLOUD_DEV_MANUFACTURER": b"x", KEY_VAR: b"k"})
    finally:
        os.umask(old)
    assert user.api_key == "ak_secret"
    assert (_mode(user.location), _mode(user.config_path)) == (0o700, 0o600)
    assert (_mode(team.location), _mode(team.config_path), _mode(team.location / "dev1")) == (
        0o770,
        0o660,
        0o770,
    )
    assert _mode(team.location / "dev1" / "MBED_CLOUD_DEV_MANUFACTURER.bin") == 0o660
    assert _mode(team.location / "dev1" / f"{KEY_VAR}.bin") == 0o660  # team members provision with it


def test_existing_loose_store_is_tightened(tmp_path, umask_022):
    """A pre-existing world-readable user store loses the extra bits; the team setgid bit stays."""
    user_dir = tmp_path / ".mbl-store" / "user"
    team_dir = tmp_path / ".mbl-store" / "team"
    user_dir.mkdir(parents=True)
    team_dir.mkdir()
    user_dir.chmod(0o755)
    team_dir.chmod(0o2777)
    Store.open(USER, tmp_path)
    Store.open(TEAM, tmp_path)
    assert _mode(user_dir) == 0o700
    assert _mode(team_dir) == 0o2770


def test_every_file_and_directory_mbl_cli_left_is_brought_to_the_documented_mode(tmp_path, umask_022):
    """mbl-cli wrote 0750 stores, 0755 certificate dirs and 0644 files (the key too): all are fixed."""
    user_dir, team_dir = tmp_path / ".mbl-store" / "user", tmp_path / ".mbl-store" / "team"
    cert_dir = team_dir / "dev1"
    cert_dir.mkdir(parents=True)
    user_dir.mkdir()
    team_dir.chmod(0o750)
    (user_dir / "config.json").write_text(
        json.dumps({"location": str(user_dir), "api_key": "ak_x", "dev_certs": {}})
    )
    (cert_dir / f"{KEY_VAR}.bin").write_bytes(b"key")
    (team_dir / "config.json").write_text(
        json.dumps(
            {
                "location": str(team_dir),
                "api_key": "",
                "dev_certs": {"dev1": [str(cert_dir / f"{KEY_VAR}.bin")]},
            }
        )
    )
    link = team_dir / "link"
    link.symlink_to(tmp_path / "outside")
    (tmp_path / "outside").write_text("not ours")
    assert _mode(cert_dir / f"{KEY_VAR}.bin") == 0o644 and _mode(cert_dir) == 0o755
    assert Store.open(USER, tmp_path).api_key == "ak_x"
    Store.open(TEAM, tmp_path)
    assert (_mode(user_dir), _mode(user_dir / "config.json"), _mode(user_dir / ".lock")) == (
        0o700,
        0o600,
        0o600,
    )
    assert (_mode(team_dir), _mode(team_dir / "config.json"), _mode(team_dir / ".lock")) == (
        0o770,
        0o660,
        0o660,
    )
    assert (_mode(cert_dir), _mode(cert_dir / f"{KEY_VAR}.bin")) == (0o770, 0o660)
    assert _mode(tmp_path / "outside") == 0o644  # a symlink is not followed


def test_directories_created_above_a_store_get_their_documented_mode(tmp_path, umask_022):
    """~/.mbl-store and other missing parents are 0750 whatever the umask: the group reaches the team."""
    (tmp_path / ".mbl-stores.json").write_text(
        json.dumps({"user": str(tmp_path / "a" / "u"), "team": str(tmp_path / "a" / "b" / "t")})
    )
    Store.open(TEAM, tmp_path)
    Store.open(USER, tmp_path)
    assert (_mode(tmp_path / "a"), _mode(tmp_path / "a" / "b")) == (0o750, 0o750)
    assert (_mode(tmp_path / "a" / "b" / "t"), _mode(tmp_path / "a" / "u")) == (0o770, 0o700)
    Store.open(USER, tmp_path / "fresh-home")
    assert _mode(tmp_path / "fresh-home") == 0o700
    assert _mode(tmp_path / "fresh-home" / ".mbl-store") == 0o750


def test_atomic_write_replaces_without_leftovers(tmp_path):
    """A reader holding the old file keeps reading it; no temporary file remains."""
    target = tmp_path / "config.json"
    atomic_write(target, b"old", 0o600)
    with target.open("rb") as reader:
        atomic_write(target, b"new", 0o640)
        assert reader.read() == b"old"
    assert target.read_bytes() == b"new" and _mode(target) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_atomic_write_failure_keeps_the_original(tmp_path):
    """When the final rename fails, the target is intact and the temporary file is removed."""
    target = tmp_path / "busy"
    target.mkdir()
    (target / "inside").write_bytes(b"keep")
    with pytest.raises(StoreError, match="cannot write"):
        atomic_write(target, b"lost", 0o600)
    assert (target / "inside").read_bytes() == b"keep"
    assert [p.name for p in tmp_path.iterdir()] == ["busy"]
    with pytest.raises(StoreError, match="cannot write in"):
        atomic_write(tmp_path / "no-such-dir" / "f", b"x", 0o600)


def test_concurrent_team_writers_lose_nothing(tmp_path):
    """Sixteen writers adding certificates at once: every one is recorded in config.json."""
    Store.open(TEAM, tmp_path)
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def add(i: int) -> None:
        try:
            store = Store.open(TEAM, tmp_path)  # each writer opens its own lock descriptor
            start.wait()
            store.add_certificate(f"cert{i}", {"arm_uc_vendor_id": bytes([i]) * 16})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    team = Store.open(TEAM, tmp_path)
    assert team.certificate_names() == sorted(f"cert{i}" for i in range(16))
    assert team.read_certificate("cert7") == {"arm_uc_vendor_id": bytes([7]) * 16}


def test_replace_and_remove_certificate(tmp_path):
    """A new set of the same name replaces the old one whole; removal forgets it."""
    team = Store.open(TEAM, tmp_path)
    team.add_certificate("c", {"arm_uc_vendor_id": b"1", "arm_uc_class_id": b"2"}, cloud_id="id-1")
    team.add_certificate("c", {"arm_uc_vendor_id": b"3"})
    assert team.read_certificate("c") == {"arm_uc_vendor_id": b"3"}
    assert sorted(p.name for p in (team.location / "c").iterdir()) == ["arm_uc_vendor_id.bin"]
    assert team.cloud_id("c") is None
    assert team.remove_certificate("c") is True
    assert team.remove_certificate("c") is False
    assert not (team.location / "c").exists()
    assert sorted(p.name for p in team.location.iterdir()) == [".lock", "config.json"]


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 101])
def test_unsafe_names_are_refused(tmp_path, name):
    """Certificate names become directories: paths and hidden names are refused."""
    with pytest.raises(StoreError, match="invalid certificate name"):
        Store.open(TEAM, tmp_path).add_certificate(name, {"arm_uc_vendor_id": b"1"})


def test_missing_and_corrupt_entries(tmp_path):
    """Unknown names, deleted .bin files and a damaged config.json are clear errors."""
    team = Store.open(TEAM, tmp_path)
    with pytest.raises(StoreError, match="no certificate named 'nope' in the team store"):
        team.read_certificate("nope")
    paths = team.add_certificate("c", {"arm_uc_vendor_id": b"1"})
    paths[0].unlink()
    with pytest.raises(StoreError, match="cannot read"):
        team.read_certificate("c")
    team.config_path.write_text('{"dev_certs": 5}')
    with pytest.raises(StoreError, match="store layout"):
        team.certificate_names()


def test_unreadable_records_are_store_errors(tmp_path):
    """Non-UTF-8 .mbl-stores.json / config.json, non-string paths: 6001, never a crash."""
    record = tmp_path / ".mbl-stores.json"
    record.write_bytes(b"\xff\xfe{")
    with pytest.raises(StoreError, match="cannot read") as info:
        store_locations(tmp_path)
    assert info.value.code == 6001
    record.unlink()
    team = Store.open(TEAM, tmp_path)
    team.config_path.write_bytes(b"\xff\xfe")
    with pytest.raises(StoreError, match="cannot read"):
        team.certificate_names()
    team.config_path.write_text('{"dev_certs": {"a": [1, 2]}}')
    with pytest.raises(StoreError, match="store layout"):
        team.read_certificate("a")


def test_garbled_cloud_record_is_no_id(tmp_path):
    """A damaged .cloud.json means "id unknown" (delete then searches by name), not a crash."""
    team = Store.open(TEAM, tmp_path)
    team.add_certificate("c", {"arm_uc_vendor_id": b"1"}, cloud_id="id-1")
    assert team.cloud_id("c") == "id-1"
    (team.location / "c" / ".cloud.json").write_bytes(b"\xff\x00")
    assert team.cloud_id("c") is None


def test_empty_store_path_is_refused_and_cwd_untouched(tmp_path, monkeypatch):
    """An empty path would make the current directory a store and chmod it: refused."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cwd.chmod(0o755)
    monkeypatch.chdir(cwd)
    (tmp_path / ".mbl-stores.json").write_text(json.dumps({"user": "", "team": " "}))
    with pytest.raises(StoreError, match="non-empty store paths"):
        Store.open(TEAM, tmp_path)
    assert _mode(cwd) == 0o755 and list(cwd.iterdir()) == []


@pytest.mark.parametrize("path", ["stores/t", "./t", "../t", "~/t", "~other/t"])
def test_relative_and_tilde_store_paths_are_refused_with_the_absolute_path(tmp_path, monkeypatch, path):
    """mbl-cli takes a relative path from the current directory and '~' literally: refused, nothing made."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".mbl-stores.json").write_text(json.dumps({"user": str(tmp_path / "u"), "team": path}))
    with pytest.raises(StoreError) as info:
        Store.open(TEAM, home)
    assert info.value.code == 6001
    assert f"the team store path {path!r}" in info.value.message
    assert "mbl-cli" in info.value.message and "absolute" in (info.value.hint or "")
    if path.startswith("~"):
        assert "starts with '~'" in info.value.message
    else:
        assert str(home / path) in (info.value.hint or "")
    assert list(cwd.iterdir()) == [] and sorted(p.name for p in home.iterdir()) == [".mbl-stores.json"]


def test_team_store_read_where_it_is_now(tmp_path):
    """A team store copied elsewhere (another member's mount point) still reads; paths are re-recorded."""
    team = Store.open(TEAM, tmp_path / "alice")
    team.add_certificate("c", {"arm_uc_vendor_id": b"1" * 16})
    moved = tmp_path / "bob" / "shared-team"
    shutil.copytree(team.location, moved)
    (tmp_path / "bob" / ".mbl-stores.json").write_text(
        json.dumps({"user": str(tmp_path / "bob" / "u"), "team": str(moved)})
    )
    bob = Store.open(TEAM, tmp_path / "bob")
    assert bob.read_certificate("c") == {"arm_uc_vendor_id": b"1" * 16}
    bob.add_certificate("d", {"arm_uc_class_id": b"2" * 16})
    assert json.loads(bob.config_path.read_text())["location"] == str(moved.resolve())


def test_recorded_paths_outside_the_store_are_not_followed(tmp_path):
    """config.json pointing at a file outside the store (a shared store edited by someone) is not read."""
    team = Store.open(TEAM, tmp_path)
    team.add_certificate("c", {KEY_VAR: b"mine"})
    outside = tmp_path / "elsewhere" / f"{KEY_VAR}.bin"
    outside.parent.mkdir()
    outside.write_bytes(b"someone else's secret")
    config = json.loads(team.config_path.read_text())
    config["dev_certs"]["c"] = [str(outside)]
    team.config_path.write_text(json.dumps(config))
    assert team.read_certificate("c") == {KEY_VAR: b"mine"}
    config["dev_certs"]["c"] = ["/etc/passwd"]
    team.config_path.write_text(json.dumps(config))
    with pytest.raises(StoreError, match=r"is not a <C variable>\.bin path"):
        team.read_certificate("c")


def test_user_and_team_store_must_differ(tmp_path):
    """One directory for both would keep the API key in the group-readable team config.json."""
    (tmp_path / ".mbl-stores.json").write_text(
        json.dumps({"user": str(tmp_path / "s"), "team": str(tmp_path / "s/")})
    )
    with pytest.raises(StoreError, match="must be different directories"):
        Store.open(USER, tmp_path)


def _cat_as_nobody(gid: int, *paths: Path) -> subprocess.CompletedProcess[bytes]:
    """``cat`` files as uid nobody with only group ``gid`` (the kernel checks the modes)."""
    return subprocess.run(
        ["cat", *map(str, paths)], user=NOBODY, group=gid, extra_groups=[], capture_output=True, check=False
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_team_member_reads_anothers_certificate_and_outsiders_cannot(umask_022):
    """Another user in the store's group reads every file of a set, the key included; others nothing."""
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        base.chmod(0o711)  # only the store's own modes decide below
        (base / ".mbl-stores.json").write_text(
            json.dumps({"user": str(base / "u"), "team": str(base / "team")})
        )
        team = Store.open(TEAM, base)
        team.add_certificate("dev1", {"MBED_CLOUD_DEV_MANUFACTURER": b"acme;", KEY_VAR: b"key"})
        for path in [team.location, *team.location.rglob("*")]:
            os.chown(path, 0, NOBODY)  # the team's group
        files = [team.config_path, *sorted((team.location / "dev1").glob("*.bin"))]
        member = _cat_as_nobody(NOBODY, *files)
        assert member.returncode == 0, member.stderr
        assert member.stdout.endswith(b"keyacme;")  # BOOTSTRAP_DEVICE_PRIVATE_KEY.bin sorts first
        outsider = _cat_as_nobody(1, *files)
        assert outsider.returncode != 0 and b"Permission denied" in outsider.stderr
        assert outsider.stdout == b""
    finally:
        shutil.rmtree(base)


@contextlib.contextmanager
def _acting_as_nobody() -> Iterator[None]:
    """Switch this process's effective uid/gid to nobody/nogroup (root can switch back)."""
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_member_opens_a_store_someone_else_owns_even_if_loose(umask_022):
    """A group member cannot chmod another's store dir; opening, reading and adding still work."""
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        base.chmod(0o711)
        (base / "alice").mkdir()
        (base / "alice" / ".mbl-stores.json").write_text(
            json.dumps({"user": str(base / "alice" / "u"), "team": str(base / "team")})
        )
        alice = Store.open(TEAM, base / "alice")
        alice.add_certificate("dev1", {KEY_VAR: b"key"})
        for path in [alice.location, *alice.location.rglob("*")]:
            os.chown(path, 0, NOBODY)
        alice.location.chmod(0o2775)  # loosened by its owner
        bob_home = base / "bob"
        bob_home.mkdir()
        (bob_home / ".mbl-stores.json").write_text(
            json.dumps({"user": str(bob_home / "u"), "team": str(base / "team")})
        )
        for path in (bob_home, bob_home / ".mbl-stores.json"):
            os.chown(path, NOBODY, NOBODY)
        with _acting_as_nobody():
            bob = Store.open(TEAM, bob_home)
            assert bob.read_certificate("dev1") == {KEY_VAR: b"key"}
            bob.add_certificate("dev2", {KEY_VAR: b"bob's"})
        assert _mode(alice.location) == 0o2775  # not bob's to change
        assert alice.certificate_names() == ["dev1", "dev2"]
        assert Store.open(TEAM, base / "alice").location == alice.location
        assert _mode(alice.location) == 0o2770  # its owner tightens it
    finally:
        shutil.rmtree(base)
