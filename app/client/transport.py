"""An in-process transport: the client's ``requests.Session`` talks to a WSGI app directly.

The embedded console would otherwise call its own server over HTTP: a web worker waiting on a
request that only another worker (or itself) can answer, which blocks or deadlocks under load.
Mounting ``WSGIAdapter`` on the session for ``http://embedded`` keeps the client code, the JSON
and the status codes exactly those of the HTTP path, with no socket and no worker involved.
"""

from __future__ import annotations

from collections.abc import Mapping
from io import BytesIO
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.test import EnvironBuilder, run_wsgi_app

if TYPE_CHECKING:
    from flask import Flask

EMBEDDED_URL = "http://embedded"


class WSGIAdapter(BaseAdapter):
    def __init__(self, wsgi_app: Flask):
        super().__init__()
        self.wsgi_app = wsgi_app

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = urlsplit(request.url)
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        builder = EnvironBuilder(
            path=url.path or "/",
            query_string=url.query,
            method=request.method,
            headers=dict(request.headers),
            data=body or b"",
            base_url=f"{url.scheme}://{url.netloc}",
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        app_iter, status, headers = run_wsgi_app(self.wsgi_app, environ, buffered=True)
        try:
            content = b"".join(app_iter)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()
        response = requests.Response()
        response.status_code = int(status.split(" ", 1)[0])
        response.reason = status.split(" ", 1)[1] if " " in status else ""
        response.headers = CaseInsensitiveDict(headers.items())
        response.raw = BytesIO(content)
        response._content = content  # the body is already read
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass
