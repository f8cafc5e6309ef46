"""The device side: FCC bundle handler and verification over KCM secure storage.

* :mod:`provkit.device.storage` — SQLite and memory backends.
* :mod:`provkit.device.kcm` — items, namespaces, chains, factory reset, encryption at rest.
* :mod:`provkit.device.clock` — the device clock set by ``mbed.CurrentTime``.
* :mod:`provkit.device.verify` — ``fcc_verify_device_configured_4mbed_cloud``.
* :mod:`provkit.device.fcc` — ``FactoryConfiguratorClient`` and the C-API mirrors.
"""
