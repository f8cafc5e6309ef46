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
        ({"bootstrap_server_uri": "coaps://bs.example.com:70000?aid=1"}, "bootstrap-server-uri"),
        ({"bootstrap_server_uri": "coaps://bs.example.com:0?aid=1"}, "bootstrap-server-uri"),
        ({"bootstrap_server_uri": "coaps://bs.example.com:56a4?aid=1"}, "bootstrap-server-uri"),
        ({"bootstrap_server_uri": "coaps://bööt.example.com:5684?aid=1"}, "bootstrap-server-uri"),
        ({"bootstrap_server_uri": "coaps://bs.example.com\u00a0:5684?aid=1"}, "bootstrap-server-uri"),
        ({"bootstrap_server_uri": "coaps://bs example.com:5684?aid=1"}, "bootstrap-server-uri"),
        ({"bootstrap_server_uri": "coaps://:5684?aid=1"}, "bootstrap-server-uri"),
        ({"bootstrap_server_uri": "coaps://?aid=1"}, "bootstrap-server-uri"),
        ({"bootstrap_server_uri": "coaps://bs$example.com?aid=1"}, "bootstrap-server-uri"),
        (
            {"use_bootstrap": False, "lwm2m_server_uri": "coaps://lwm2m.example.com:99999?aid=1"},
            "lwm2m-server-uri",
        ),
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
        ({"manufacturer-name": "M" * 200_000}, "device-info.manufacturer-name"),
        ({"device-type": "t" * 65}, "device-info.device-type"),
        ({"model-number": "é" * 33}, "device-info.model-number"),
        ({"hardware-version": "1" * 65}, "device-info.hardware-version"),
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


@pytest.mark.parametrize(
    "uri",
    [
        "coaps://bs.example.com:5684?aid=1",
        "coap://bs.example.com?aid=1",
        "coaps://192.0.2.7:65535?aid=1",
        "coaps://[2001:db8::1]:5684?aid=1",
        "coaps://xn--bt-fka.example.com?aid=1",
    ],
)
def test_valid_uri_hosts_and_ports_pass(uri: str) -> None:
    """Host names, IPv4/IPv6 addresses, IDNA names and ports 1-65535 are accepted."""
    assert _validate(bootstrap_server_uri=uri).server_uri == uri


def test_device_info_text_of_64_bytes_is_accepted() -> None:
    """64 bytes is the device's limit and still accepted; the limit is named when exceeded."""
    section = {**base_config()["device-info"], "manufacturer-name": "M" * 64}
    assert _validate(device_info=section).device_info.manufacturer_name == "M" * 64
    section["manufacturer-name"] += "M"
    with pytest.raises(ConfigError) as info:
        _validate(device_info=section)
    assert "65 bytes" in info.value.message and "at most 64 bytes" in info.value.message


def _write_text(tmp_path: Path, text: str) -> FcuPaths:
    path = tmp_path / "config" / "fcu.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return FcuPaths.resolve(tmp_path, environ={})


@pytest.mark.parametrize(
    "nest",
    [
        lambda n: "x: " + "[" * n + "]" * n + "\n",
        lambda n: "x: " + "{a: " * n + "1" + "}" * n + "\n",
        lambda n: "".join(" " * i + f"k{i}:\n" for i in range(n)) + " " * n + "v: 1\n",
        lambda n: "".join(" " * i + "-\n" for i in range(n)),
    ],
    ids=["flow-lists", "flow-maps", "block-maps", "block-lists"],
)
def test_deep_nesting_is_error_200_not_a_recursion_error(tmp_path: Path, nest: Any) -> None:
    """5,000 nested brackets (or 600 indented levels) fail with 200 naming the limit, no traceback."""
    depth = 5000 if "[" in nest(1) or "{" in nest(1) else 600
    paths = _write_text(tmp_path, nest(depth))
    with pytest.raises(ConfigError) as info:
        load_config(paths)
    assert info.value.code == FcuErrorCode.CONFIG_NOT_YAML
    assert "nesting deeper than 32 levels" in (info.value.hint or "")


def test_nesting_within_the_limit_still_parses(tmp_path: Path) -> None:
    """The limit leaves room: 30 levels parse (and then fail only as an unknown key)."""
    paths = _write_text(tmp_path, "x: " + "[" * 30 + "]" * 30 + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(paths)
    assert info.value.code == FcuErrorCode.VALIDATION_ERROR and "field: x." in info.value.message


def test_key_given_twice_is_error_380_naming_both_lines(tmp_path: Path) -> None:
    """A stray second use-bootstrap: is refused instead of silently overriding the first."""
    write_config(tmp_path, base_config())
    path = tmp_path / "config" / "fcu.yml"
    lines = path.read_text(encoding="utf-8").splitlines()
    first = next(n for n, line in enumerate(lines, 1) if line.startswith("use-bootstrap:"))
    path.write_text("\n".join([*lines, "use-bootstrap: false"]) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(FcuPaths.resolve(tmp_path, environ={}))
    assert info.value.code == FcuErrorCode.VALIDATION_ERROR
    assert info.value.message.startswith("Validation error in field: use-bootstrap.")
    assert f"lines {first} and {len(lines) + 1}" in info.value.message


def test_key_given_twice_in_a_section_is_refused(tmp_path: Path) -> None:
    """Duplicates inside device-info are refused too."""
    paths = _write_text(tmp_path, "device-info:\n  model-number: A\n  model-number: B\n")
    with pytest.raises(ConfigError) as info:
        load_config(paths)
    assert "field: model-number." in info.value.message and "lines 2 and 3" in info.value.message


def test_oversize_config_file_is_190(tmp_path: Path) -> None:
    """An fcu.yml over 1 MiB is refused with 190 before it is parsed."""
    paths = _write_text(tmp_path, "# " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(paths)
    assert info.value.code == FcuErrorCode.CONFIG_LOAD_FAILED
    assert "larger than 1,048,576 bytes" in (info.value.hint or "")
