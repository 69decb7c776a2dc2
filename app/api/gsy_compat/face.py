"""What the SDK face knows about the exchange it serves: built once per server, immutable.

The grid never changes while a server runs, so the scenario tree, the registry's asset leaves
and the simulation id are computed here once; everything that changes (slots, fees,
aggregators, outbox) is read from the store on every request. A websocket reads the outbox and
the clock again when the store's notifier (``gsy.events``, ``app.store.notify``) says they
changed.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from app.api.auth import TokenSigner, User, UserBook
from app.api.gsy_compat import protocol
from app.api.gsy_compat.store import GsyStore
from app.api.service import ExchangeService
from app.operator.store import OperatorStore

SDK_TOKEN_TTL_S = 48 * 3600  # the SDK refreshes its token every 12 h, a quarter of gsy-web's 48 h


@dataclass
class GsyFace:
    service: ExchangeService
    users: UserBook
    signer: TokenSigner
    gsy: GsyStore
    ops: OperatorStore  # the console's audit log, where SDK fee commands are recorded too
    simulation_id: str
    stop: threading.Event = field(default_factory=threading.Event)  # the process is stopping
    max_sockets: int = 12  # websockets this process serves at once
    max_aggregators: int = 20  # aggregators one user may own (MAX_AGGREGATORS_PER_USER)
    tree: dict = field(init=False)
    serialized: str = field(init=False)
    assets: dict[str, list[dict]] = field(init=False)  # asset leaves by house uuid
    managed: dict[str, str] = field(init=False)  # uuid -> name of grid and community markets
    socket_slots: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self.socket_slots = threading.BoundedSemaphore(self.max_sockets)
        grid = self.service.grid
        self.tree = protocol.area_tree(grid, self.service.assets_by_market())
        self.serialized = json.dumps(self.tree)
        self.assets = {}

        def walk(node: dict) -> None:
            leaves = [c for c in node["children"] if c["type"] != "Area"]
            if leaves:
                self.assets[node["uuid"]] = leaves
            for child in node["children"]:
                if child["type"] == "Area":
                    walk(child)

        walk(self.tree)
        self.managed = {m.uuid: m.name for m in grid.markets if m.level in protocol.MANAGED_LEVELS}

    def may_manage(self, user: User) -> list[str]:
        return [uuid for uuid, name in self.managed.items() if user.may_manage(uuid, name)]

    def market_name(self, uuid: str) -> str | None:
        market = self.service.markets.get(uuid)
        return None if market is None else market.name
