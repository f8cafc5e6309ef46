"""A virtual Zephyr device that speaks SMP (mcumgr): the file-system group and Anjay's /factory.

* :mod:`provkit.device.smp.fs_group` — the fs group's commands with Zephyr's ``fs_mgmt`` rules.
* :mod:`provkit.device.smp.mounts` — files in a directory (``/lfs``) and the provisioning
  image's ``/factory`` (:mod:`provkit.device.smp.factory`).
* :mod:`provkit.device.smp.device` — request dispatch (fs and OS groups) and the assembled
  provisioning image.

Serve it with :mod:`provkit.transport.smp_server` (serial console framing or UDP).
"""

from provkit.device.smp.device import AnjayProvisioningImage, SmpDevice, default_endpoint_name

__all__ = ["AnjayProvisioningImage", "SmpDevice", "default_endpoint_name"]
