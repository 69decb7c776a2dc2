"""The one shape of an error the API answers: HTTP ``status``, a machine ``code``, a ``message``.

Each face has its kind (``ApiError`` for the Grid Operator API's requests, ``AuthError`` for
tokens and rights, ``GsyError`` for the Grid Singularity face); each blueprint turns them into its
JSON body with its error handler.
"""

from __future__ import annotations


class HttpError(Exception):
    """An error answered with ``status`` and a body naming ``code`` and ``message``."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(message)
