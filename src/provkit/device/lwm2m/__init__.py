"""Device side of LwM2M factory provisioning: the SenML acceptor over KCM.

Plug :func:`make_lwm2m_handler` into the device agent's handler map under
:data:`provkit.wire.framing.LWM2M_TOKEN`.
"""

from provkit.device.lwm2m.acceptor import Lwm2mAcceptor, make_lwm2m_handler
from provkit.lwm2m.response import AcceptResult, AcceptStatus

__all__ = ["AcceptResult", "AcceptStatus", "Lwm2mAcceptor", "make_lwm2m_handler"]
