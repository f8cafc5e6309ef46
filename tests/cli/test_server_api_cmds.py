"""``provkit server api-key create|list|revoke`` on a registry file."""

from __future__ import annotations

import json

from click.testing import CliRunner

from provkit.cli.server_api_cmds import api_key_group
from provkit.registry import Registry


def test_create_list_and_revoke(tmp_path):
    """The key is printed once on stdout; list never shows it; revoke stops it at once."""
    registry = str(tmp_path / "registry.sqlite")
    runner = CliRunner()
    created = runner.invoke(
        api_key_group, ["create", "alice", "--group", "administrators", "--registry", registry]
    )
    assert created.exit_code == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("ak_") and "not shown again" in created.stderr
    listed = runner.invoke(api_key_group, ["list", "--registry", registry])
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["name"] == "alice" and row["group"] == "administrators" and row["status"] == "ACTIVE"
    assert key[35:] not in listed.stdout
    with Registry.open(registry) as opened:
        assert opened.api_keys.authenticate(key) is not None
    revoked = runner.invoke(api_key_group, ["revoke", "alice", "--registry", registry])
    assert revoked.exit_code == 0 and json.loads(revoked.stdout)["status"] == "REVOKED"
    with Registry.open(registry) as opened:
        assert opened.api_keys.authenticate(key) is None


def test_errors_are_coded(tmp_path):
    """A taken name is 8409, an unknown key 8404, an unknown group a usage error."""
    registry = str(tmp_path / "registry.sqlite")
    runner = CliRunner()
    assert runner.invoke(api_key_group, ["create", "bob", "--registry", registry]).exit_code == 0
    again = runner.invoke(api_key_group, ["create", "bob", "--registry", registry])
    assert again.exit_code == 1 and "Error API-8409: an API key named 'bob' exists already" in again.stderr
    missing = runner.invoke(api_key_group, ["revoke", "carol", "--registry", registry])
    assert missing.exit_code == 1 and "Error API-8404" in missing.stderr
    usage = runner.invoke(api_key_group, ["create", "dan", "--group", "root", "--registry", registry])
    assert usage.exit_code == 2
