"""Which client speaks to the exchange the console operates: one setting, ``GRID_API_URL``.

==================================  ====================================================
``GRID_API_URL``                    client
==================================  ====================================================
unset                               ours, in-process (``GridOperatorClient.embedded``)
``http(s)://HOST``                  ours over HTTP (``GridOperatorClient``)
``gsy+redis://HOST:PORT``           a local gsy-e over Redis (:mod:`app.client.gsy_redis`)
``gsy+https://HOST``                Grid Singularity's hosted exchange (:mod:`app.client.gsy_hosted`)
==================================  ====================================================

Against a gsy exchange only the operator agent (one per deployment) holds the link: it is the
one client gsy-e lets select the markets. Asked for a plain ``GridOperatorClient`` (the web
workers' console), the factory gives a :class:`~app.client.gsy.GsyReader` of what the agent's link
last stored; asked for an agent class (``OperatorAgent``), the agent runs on the link.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from app.client.client import GridOperatorClient
from app.client.gsy import GsyLink, GsyLinkStore, GsyReader
from app.config import Settings

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import Engine


def link_class(settings: Settings) -> type[GsyLink]:
    if settings.gsy_dialect == "redis":
        from app.client.gsy_redis import GsyRedisLink

        return GsyRedisLink
    from app.client.gsy_hosted import GsyHostedLink

    return GsyHostedLink


def gsy_options(settings: Settings) -> dict:
    options = {"configuration_id": settings.gsy_configuration_id}
    if settings.gsy_dialect == "hosted":
        options.update(simulation_id=settings.gsy_simulation_id, websocket_url=settings.gsy_websocket_url)
    return options


def gsy_credentials(settings: Settings) -> tuple[str, str]:
    return (
        settings.gsy_username or settings.agent_username,
        settings.gsy_password or settings.agent_password,
    )


def make_client(
    settings: Settings,
    wsgi_app: Flask | None = None,
    cls: type[GridOperatorClient] = GridOperatorClient,
    engine: Engine | None = None,
    **kwargs: object,
) -> GridOperatorClient:
    """The client of the exchange the console drives (see the module's table)."""
    if settings.gsy_dialect is not None:
        if engine is None:
            raise ValueError("a gsy exchange's client needs the store's engine (its link's state)")
        link_store = GsyLinkStore(engine, settings.exchange_key)
        username, password = gsy_credentials(settings)
        if cls is GridOperatorClient:
            return GsyReader(settings.grid_api_url, username, password, link_store=link_store, **kwargs)
        base = link_class(settings)
        if issubclass(cls, GsyLink):
            combined = cls
        else:
            combined = type(f"{base.__name__}{cls.__name__}", (base, cls), {"run_forever": _run_then_close})
        return combined(
            settings.grid_api_url,
            username,
            password,
            link_store=link_store,
            **gsy_options(settings),
            **kwargs,
        )
    if settings.grid_api_url:
        return cls(settings.grid_api_url, settings.agent_username, settings.agent_password, **kwargs)
    if wsgi_app is None:
        raise ValueError("the embedded exchange needs its Flask app for the in-process client")
    return cls.embedded(wsgi_app, settings.agent_username, settings.agent_password, **kwargs)


def _run_then_close(self: GsyLink, stop: threading.Event) -> None:
    """The agent's ``run_forever`` on a gsy link: the link starts first and closes after."""
    self.start()
    try:
        super(type(self), self).run_forever(stop)
    finally:
        self.stop()
