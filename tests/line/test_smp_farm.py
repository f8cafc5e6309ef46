"""The farm of virtual Zephyr boards: addresses, storage per board, a provisioned board halts on restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from provkit.errors import SmpProvisioningFailed
from provkit.factory.lwm2m import FactoryProvisioning
from provkit.factory.lwm2m.zephyr import provision_board
from provkit.line.smp_farm import SmpDeviceFarm
from provkit.transport.smp_link import SmpLink, SmpSettings

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[1] / "vectors" / "lwm2m" / "sample_psk.yaml"


def _link(address: str) -> SmpLink:
    settings = SmpSettings(timeout_s=2.0)
    if address.startswith("smp-serial:"):
        return SmpLink.serial(address.removeprefix("smp-serial:"), settings=settings)
    host, port = address.removeprefix("smp-udp:").rsplit(":", 1)
    return SmpLink.udp(host, int(port), settings=settings)


@pytest.mark.parametrize("link", ["udp", "serial"])
def test_boards_keep_their_storage(tmp_path, link):
    storage = tmp_path / "boards"
    with SmpDeviceFarm(3, link=link, storage=storage) as farm:  # type: ignore[arg-type]
        names = [board.endpoint_name for board in farm.boards]
        assert len(set(names)) == 3 and all(name.startswith("anjay-zephyr-demo-") for name in names)
        with _link(farm.addresses[2]) as smp:
            _, outcome = provision_board(smp, lambda ep: FactoryProvisioning(SAMPLE, ep, None, None, None))
        assert outcome.endpoint_name == names[2]
        assert farm.describe()["endpoints"] == names and farm.messages_served >= 4
    assert sorted(p.name for p in storage.glob("*.sqlite")) == [f"board-{i:05d}.sqlite" for i in range(3)]
    with SmpDeviceFarm(3, link=link, storage=storage) as again:
        assert again.boards[2].console_lines[0].startswith("Factory provisioning information already present")
        with _link(again.addresses[2]) as smp, pytest.raises(SmpProvisioningFailed):
            provision_board(smp, lambda ep: FactoryProvisioning(SAMPLE, ep, None, None, None))
        assert again.boards[0].factory.result is None  # the others still wait for a blob


def test_unusable_storage_directory(tmp_path):
    from provkit.errors import StorageError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError):
        SmpDeviceFarm(1, storage=blocker / "sub").bind()
