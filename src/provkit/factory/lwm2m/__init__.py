"""Factory side of LwM2M provisioning: FactoryProvisioning, certificates, delivery, registration."""

from provkit.factory.lwm2m.certs import CertConfigError, CertInfo, Credentials
from provkit.factory.lwm2m.coiote import CoioteRegistration, ServerInfo
from provkit.factory.lwm2m.delivery import ProvisioningRefused, deliver
from provkit.factory.lwm2m.provisioning import FactoryProvisioning

__all__ = [
    "CertConfigError",
    "CertInfo",
    "CoioteRegistration",
    "Credentials",
    "FactoryProvisioning",
    "ProvisioningRefused",
    "ServerInfo",
    "deliver",
]
