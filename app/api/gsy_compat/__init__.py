"""A face that speaks Grid Singularity's SDK dialect, so gsy-e-sdk scripts run unchanged.

Mounted on the same server as ``/api/v1`` (embedded exchange only) by ``app.create_app``. The
shapes are in ``protocol`` (pure), the aggregators and websocket outbox in ``store``, the HTTP
and websocket endpoints in ``routes``. Fee semantics are ours, shared with ``/api/v1``: a fee
sent during slot N applies from N+1, is validated, obeys the user's market grants, and is
audited with source ``gsy-sdk:<aggregator name>``.
"""

from app.api.gsy_compat.face import GsyFace
from app.api.gsy_compat.routes import install

__all__ = ["GsyFace", "install"]
