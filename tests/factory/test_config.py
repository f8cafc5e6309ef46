"""fcu.yml loading and the FCU validations: codes 190, 200 and 380 naming the field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from provkit.codes import FcuErrorCode
from provkit.errors import ConfigError
from provkit.factory.config import EntropyMode, KeyMode
from provkit.factory.config_validate import load_config, validate_config
from provkit.factory.home import init_home
from provkit.factory.paths import FcuPaths

from .conftest import CLASS_ID, VENDOR_ID, base_config, write_config


def _validate(**overrides: Any) -> Any:
    data = base_config()
    for key, value in overrides.items():
        if value is None:
            data.pop(key.replace("_", "-"), None)
        else:
            data[key.replace("_", "-")] = value
    return validate_config(data, base_dir=Path("/cfg"))


def test_template_loads_with_defaults(tmp_path: Path) -> None:
    """The embedded template written by init validates and yields the documented defaults."""
    paths = init_home(tmp_path)
    config = load_config(paths)
    assert config.key_mode is KeyMode.BY_TOOL
    assert config.entropy_mode is EntropyMode.BY_DEVICE
    assert config.use_bootstrap and config.time_sync and config.verify_on_device
    assert not config.first_to_claim
    assert config.server_ca_certificate_file == paths.resources / "bootstrap_server_ca_cert.pem"
    assert config.device_info.timezone == "UTC"
    assert config.chain_depth == 1


def test_env_interpolation_uses_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A <%= ENV['NAME'] %> placeholder takes the environment variable's value."""
    monkeypatch.setenv("MY_CA_DIR", "/opt/ca")
    data = base_config()
    write_config(tmp_path, data)
    path = tmp_path / "config" / "fcu.yml"
    text = path.read_text().replace(
        "bootstrap-server-ca-certificate-file: ../resources/bootstrap_server_ca_cert.pem",
        'bootstrap-server-ca-certificate-file: <%= ENV["MY_CA_DIR"] %>/bs.pem',
    )
    path.write_text(text)
    config = load_config(FcuPaths.resolve(tmp_path, environ={}))
    assert config.server_ca_certificate_file == Path("/opt/ca/bs.pem")


def test_reserved_variables_default_to_resolved_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FCU_RESOURCES_DIR resolves to <home>/resources when it is not set."""
    monkeypatch.delenv("FCU_RESOURCES_DIR", raising=False)
    paths = init_home(tmp_path)
    assert load_config(paths).server_ca_certificate_file.parent == tmp_path.resolve() / "resources"


def test_unset_variable_is_error_190(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A placeholder naming an unset variable fails with 190 and names the variable in the hint."""
    monkeypatch.delenv("NO_SUCH_VAR_X", raising=False)
    path = tmp_path / "fcu.yml"
    path.write_text("vendor-id: <%= ENV['NO_SUCH_VAR_X'] %>\n")
    with pytest.raises(ConfigError) as info:
        load_config(FcuPaths.resolve(tmp_path, config_file=path, environ={}))
    assert info.value.code == FcuErrorCode.CONFIG_LOAD_FAILED
    assert "NO_SUCH_VAR_X" in (info.value.hint or "")


def test_placeholders_in_comments_are_not_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable named only in a comment (whole-line or trailing) need not be set; quoted '#' is text."""
    monkeypatch.delenv("NO_SUCH_VAR_X", raising=False)
    monkeypatch.setenv("MY_DEVICE_TYPE", "sensor")
    data = base_config()
    data["device-info"]["device-type"] = "PLACEHOLDER"
    path = write_config(tmp_path, data)
    text = path.read_text().replace(
        "device-type: PLACEHOLDER",
        "device-type: \"#<%= ENV['MY_DEVICE_TYPE'] %>\"  # was <%= ENV['NO_SUCH_VAR_X'] %>",
    )
    text = text.replace(
        "manufacturer-name: Example Ltd.", "manufacturer-name: O'Brien Ltd. # not <%= ENV['NO_SUCH_VAR_X'] %>"
    )
    path.write_text("# <%= ENV['NO_SUCH_VAR_X'] %>\n" + text)
    config = load_config(FcuPaths.resolve(tmp_path, environ={}))
    assert config.device_info.device_type == "#sensor"
    assert config.device_info.manufacturer_name == "O'Brien Ltd."


def test_unquoted_numbers_in_text_fields_keep_their_text(tmp_path: Path) -> None:
    """hardware-version: 1.10 stays '1.10', model-number: 0123 stays '0123' (YAML would give 1.1 and 83)."""
    path = tmp_path / "fcu.yml"
    text = init_home(tmp_path / "h").config_file.read_text()
    text = text.replace('hardware-version: "1.0"', "hardware-version: 1.10")
    text = text.replace("model-number: EX-1", "model-number: 0123")
    text = text.replace("memory-total: 512", "memory-total: 0x400")
    text = text.replace("organizational-unit-name: Factory", "organizational-unit-name: 007")
    path.write_text(text)
    config = load_config(FcuPaths.resolve(tmp_path / "h", config_file=path, environ={}))
    info = config.device_info
    assert (info.hardware_version, info.model_number) == ("1.10", "0123")
    assert info.memory_total == 1024 and type(info.memory_total) is int
    assert config.certificate_authority["organizational-unit-name"] == "007"
    assert type(config.chain_depth) is int


def test_missing_file_is_error_190(tmp_path: Path) -> None:
    """A configuration file that does not exist fails with 190 naming the file."""
    with pytest.raises(ConfigError) as info:
        load_config(FcuPaths.resolve(tmp_path, environ={}))
    assert info.value.code == 190
    assert str(tmp_path / "config" / "fcu.yml") in info.value.message


@pytest.mark.parametrize("text", ["a: [1, 2\n", "- just\n- a list\n", "key: value: other\n"])
def test_not_yaml_mapping_is_error_200(tmp_path: Path, text: str) -> None:
    """Broken YAML or a non-mapping document fails with 200."""
    path = tmp_path / "fcu.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(FcuPaths.resolve(tmp_path, config_file=path, environ={}))
    assert info.value.code == FcuErrorCode.CONFIG_NOT_YAML
    assert info.value.message == FcuErrorCode.CONFIG_NOT_YAML.format(path)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"device_key_generation_mode": None}, "device-key-generation-mode"),
        ({"device_key_generation_mode": "by_magic"}, "device-key-generation-mode"),
        ({"entropy_generation_mode": "random"}, "entropy-generation-mode"),
        ({"use_bootstrap": None}, "use-bootstrap"),
        ({"use_bootstrap": "yes please"}, "use-bootstrap"),
        ({"time_sync": None}, "time-sync"),
        ({"verify_on_device": 3}, "verify-on-device"),
        ({"first_to_claim": True, "use_bootstrap": False}, "first-to-claim"),
        ({"bootstrap_server_uri": "http://bs.example.com?aid=1"}, "bootstrap-server-uri"),
        ({"bootstrap_server_uri": "coaps://bs.example.com"}, "bootstrap-server-uri"),
        ({"bootstrap_server_uri": "coaps://bs.example.com?aid="}, "bootstrap-server-uri"),
        (
            {"first_to_claim": True, "bootstrap_server_uri_first_to_claim": "coaps://bs?aid=1"},
            "bootstrap-server-uri-first-to-claim",
        ),
        (
            {"first_to_claim": True, "bootstrap_server_uri_first_to_claim": None},
            "bootstrap-server-uri-first-to-claim",
        ),
        ({"use_bootstrap": False, "lwm2m_server_uri": "coaps://lwm2m.example.com"}, "lwm2m-server-uri"),
        ({"bootstrap_server_ca_certificate_file": None}, "bootstrap-server-ca-certificate-file"),
        ({"vendor_id": "not-a-uuid"}, "vendor-id"),
        ({"class_id": "12345678-1234-1234-c234-123456789abc"}, "class-id"),
        ({"update_auth_certificate_file": "upd.der", "vendor_id": VENDOR_ID}, "class-id"),
        ({"update_auth_certificate_file": "upd.der", "class_id": CLASS_ID}, "vendor-id"),
        ({"device_certificate_chain_depth": 6}, "device-certificate-chain-depth"),
        ({"device_certificate_chain_depth": "two"}, "device-certificate-chain-depth"),
        ({"certificate_authority": {"colour": "x"}}, "certificate-authority.colour"),
        ({"certificate_authority": {"country-name": "GBR"}}, "certificate-authority.country-name"),
        ({"device_certificate": {"common-name": "x"}}, "device-certificate.common-name"),
        ({"device_info": None}, "device-info"),
        ({"device_info": {"device-type": "t"}}, "device-info.manufacturer-name"),
        ({"custom_properties": "abc"}, "custom-properties"),
    ],
)
def test_invalid_field_is_error_380(overrides: dict[str, Any], field: str) -> None:
    """Each invalid or missing value fails with 380 and the message names the field."""
    with pytest.raises(ConfigError) as info:
        _validate(**overrides)
    assert info.value.code == FcuErrorCode.VALIDATION_ERROR
    assert info.value.message.startswith(f"Validation error in field: {field}. Message: ")
    assert info.value.hint


@pytest.mark.parametrize(
    ("info", "field"),
    [
        ({"memory-total": -1}, "device-info.memory-total"),
        ({"memory-total": 2**32}, "device-info.memory-total"),
        ({"memory-total": "lots"}, "device-info.memory-total"),
        ({"timezone": "Mars/Olympus_Mons"}, "device-info.timezone"),
        ({"model-number": ""}, "device-info.model-number"),
        ({"ram": 4}, "device-info.ram"),
    ],
)
def test_invalid_device_info_is_error_380(info: dict[str, Any], field: str) -> None:
    """Bad device-info values fail with 380 naming device-info.<key>."""
    section = {**base_config()["device-info"], **info}
    with pytest.raises(ConfigError) as error:
        _validate(device_info=section)
    assert error.value.message.startswith(f"Validation error in field: {field}.")


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([{"name": "mbed.Custom", "type": "config", "data": "x"}], "custom-properties[0].name"),
        ([{"name": "mbedThing", "type": "config", "data": "x"}], "custom-properties[0].name"),
        ([{"name": "bad name!", "type": "config", "data": "x"}], "custom-properties[0].name"),
        (
            [{"name": "a.b", "type": "config", "data": "x"}, {"name": "a.b", "type": "config", "data": 1}],
            "custom-properties[1].name",
        ),
        ([{"name": "a.b", "type": "symmetric", "data": "x"}], "custom-properties[0].type"),
        ([{"name": "a.b", "type": "config"}], "custom-properties[0]"),
        ([{"name": "a.b", "type": "config", "data": "x", "data-file": "f"}], "custom-properties[0]"),
        ([{"name": "a.b", "type": "certificate", "data": 5}], "custom-properties[0].data"),
        ([{"name": "a.b", "type": "config", "data": "x", "acl": 1}], "custom-properties[0].acl"),
    ],
)
def test_invalid_custom_property_is_error_380(items: list[dict[str, Any]], field: str) -> None:
    """Custom property rules (no mbed prefix, unique KCM names, known types) fail with 380."""
    with pytest.raises(ConfigError) as info:
        _validate(custom_properties=items)
    assert info.value.message.startswith(f"Validation error in field: {field}.")


def test_lwm2m_mode_and_account_id() -> None:
    """In LwM2M mode the LwM2M URI and CA are used and the aid is the account id."""
    config = _validate(use_bootstrap=False)
    assert config.server_uri.startswith("coaps://lwm2m.example.com")
    assert config.account_id == "0123456789abcdef0123456789abcdef"
    assert config.server_ca_certificate_file.name == "lwm2m_server_ca_cert.pem"


def test_uuid_values_become_16_bytes() -> None:
    """vendor-id and class-id are parsed as RFC 4122 UUIDs into 16 raw bytes."""
    config = _validate(vendor_id=VENDOR_ID, class_id=CLASS_ID)
    assert config.vendor_id == bytes.fromhex(VENDOR_ID.replace("-", ""))
    assert config.class_id is not None and len(config.class_id) == 16


def test_custom_properties_mapping_form() -> None:
    """custom-properties may also be a mapping of name to type and data."""
    config = _validate(custom_properties={"acme.Colour": {"type": "config", "data": "blue"}})
    assert config.custom_properties[0].name == "acme.Colour"
    assert config.custom_properties[0].data == "blue"


@pytest.mark.parametrize("spec", ["blue", 5, ["config"]])
def test_custom_properties_mapping_form_needs_mappings(spec: object) -> None:
    """In the mapping form, a value that is not a mapping is a 380 naming the property, not a crash."""
    with pytest.raises(ConfigError) as info:
        _validate(custom_properties={"acme.Colour": spec})
    assert info.value.message.startswith("Validation error in field: custom-properties.acme.Colour.")


def test_resources_argument_wins_over_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit resources_dir is what <%= ENV['FCU_RESOURCES_DIR'] %> expands to, not the environment."""
    monkeypatch.setenv("FCU_RESOURCES_DIR", "/somewhere/else")
    init_home(tmp_path)
    paths = FcuPaths.resolve(tmp_path, resources_dir=tmp_path / "res")
    assert load_config(paths).server_ca_certificate_file.parent == tmp_path.resolve() / "res"


def test_fifo_as_config_file_is_190_not_a_hang(tmp_path: Path) -> None:
    """A named pipe given as fcu.yml fails at once with 190 instead of blocking on the read."""
    fifo = tmp_path / "fcu.yml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as info:
        load_config(FcuPaths.resolve(tmp_path, config_file=fifo, environ={}))
    assert info.value.code == FcuErrorCode.CONFIG_LOAD_FAILED and "regular file" in (info.value.hint or "")
