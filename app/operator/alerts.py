"""Flow limits and alerts: what needs the operator's attention, evaluated by the agent.

Alerts follow Grafana's model (``/work/shared/STYLE.md`` §6): one instance per rule and market;
a condition that starts to hold opens it as *pending*; it *fires* (state "alerting") once the
condition held for the rule's ``for_evaluations`` consecutive evaluations (so one noisy slot pages
nobody); it is *resolved* when the condition stops holding. Acknowledging (who, when) is separate
from resolving. Every transition is stored with its wall-clock time and the simulated slot.

The agent evaluates the rules server-side, whether or not a browser is open:

- per market, at the end of every market cycle (:func:`evaluate_market_alerts`): over the import
  or export limit, fee at the model's cap for ``FEE_AT_CAP_SLOTS`` slots, a revenue spike (over
  twice the highest slot of the day before), the
  last fee command refused;
- for the exchange as a whole, after every poll (:func:`liveness_conditions`): no new slot for two
  slot lengths, the exchange unreachable.

The conditions are plain functions of history rows, limits and commands (tested without a
database); :class:`AlertStore` keeps the instances and the console's limit changes.

A market's flow limits [kWh per slot] are the newest ones the operator set in the console
(:meth:`AlertStore.set_limits`, audited), else the exchange's own (the scenario's, from
``GET /api/v1/grid``: ``import_limit_kwh`` / ``export_limit_kwh``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from app import slots
from app.operator.store import OperatorStore
from app.store.schema import alerts, limit_changes

log = logging.getLogger(__name__)

PENDING, ALERTING, RESOLVED = "pending", "alerting", "resolved"
OPEN_STATES = (PENDING, ALERTING)
EXCHANGE = ""  # market_uuid of the alerts about the exchange as a whole

FEE_AT_CAP_SLOTS = 8
"""A model's fee at its cap for this many consecutive slots (2 h of 15-minute slots) alerts."""
REVENUE_SPIKE_FACTOR = 2.0
"""A slot's fee revenue above this many times the highest of the day before it alerts ... (the
highest, not the median: every sunny noon is several times a day's median; on the default
scenario a 3 x median rule fired on 80 of 288 slots of the grid market, this one on none)"""
REVENUE_SPIKE_MIN_CT = 50.0
"""... when it is above this much too [ct] (a spike from 1 ct to 4 ct is nobody's concern)."""
REVENUE_SPIKE_MIN_HISTORY = 96
"""Slots of history (a day of 15-minute slots) the rule needs before it says anything."""
REVENUE_LOOK_BACK = 96
NO_SLOT_FACTOR = 2.0
"""No new slot for this many slot lengths alerts (the exchange stopped sending cycles) ..."""
NO_SLOT_MIN_S = 10.0
"""... and for at least this long [s]: with demo slots of a second, a busy agent late by two
slot lengths is not an exchange that stopped."""
HISTORY_FOR_ALERTS = REVENUE_LOOK_BACK + 1


@dataclass(frozen=True)
class Rule:
    name: str
    title: str
    for_evaluations: int  # consecutive evaluations the condition holds before it fires


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("over_limit", "Over its flow limit", 2),
        Rule("fee_at_cap", "Fee stuck at the model's cap", 1),  # the condition spans N slots itself
        Rule("command_refused", "Fee command refused", 1),
        Rule("revenue_spike", "Fee revenue spike", 1),
        Rule("no_new_slot", "No new slot from the exchange", 1),  # the condition spans 2 slots
        Rule("exchange_unreachable", "Exchange unreachable", 2),
    )
}
MARKET_RULES = ("over_limit", "fee_at_cap", "command_refused", "revenue_spike")
LIVENESS_RULES = ("no_new_slot", "exchange_unreachable")


@dataclass(frozen=True)
class Limits:
    """A market's flow limits [kWh per slot]; None: no limit that way."""

    import_kwh: float | None = None
    export_kwh: float | None = None
    source: str = "exchange"  # "exchange" (the scenario's) or "console" (set by an operator)

    @property
    def any(self) -> bool:
        return self.import_kwh is not None or self.export_kwh is not None


@dataclass(frozen=True)
class Condition:
    """One rule evaluated for one market (``EXCHANGE`` for the exchange): holds or not, and why."""

    rule: str
    market_uuid: str
    market_name: str
    active: bool
    message: str = ""
    value: float | None = None
    threshold: float | None = None


def _num(x: float) -> str:
    """12.5 → "12.5", 10.0 → "10", 0.01 → "0.01": as few digits as say the value."""
    text = f"{x:.2g}" if abs(x) < 1 else f"{x:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _time(slot: str | None) -> str:
    return slot[11:16] if slot and len(slot) >= 16 else (slot or "?")


# -- limits -------------------------------------------------------------------------------------
def effective_limits(
    exchange_markets: Sequence[Mapping], overrides: Mapping[str, Limits]
) -> dict[str, Limits]:
    """market uuid → its limits: the console's (``overrides``) where set, else the exchange's
    (``import_limit_kwh`` / ``export_limit_kwh`` of the grid tree's market entries)."""
    out: dict[str, Limits] = {}
    for m in exchange_markets:
        uuid = m.get("area_uuid") or m.get("uuid")
        imp, exp = m.get("import_limit_kwh"), m.get("export_limit_kwh")
        if imp is not None or exp is not None:
            out[uuid] = Limits(imp, exp, "exchange")
    out.update(overrides)
    return out


def flow_load(row: Mapping, limits: Limits | None) -> dict:
    """How full a market's connection was in ``row``'s slot: ``{"import_pct", "export_pct",
    "load_pct", "over": "import" | "export" | None}`` (percent of each limit; None without one)."""
    out: dict = {"import_pct": None, "export_pct": None, "load_pct": None, "over": None}
    if limits is None:
        return out
    over_pct = None
    for way, limit in (("import", limits.import_kwh), ("export", limits.export_kwh)):
        flow = row.get(f"{way}_kwh")
        if limit is None or flow is None or (isinstance(flow, float) and math.isnan(flow)):
            continue
        pct = 100.0 * float(flow) / float(limit)
        out[f"{way}_pct"] = pct
        out["load_pct"] = pct if out["load_pct"] is None else max(out["load_pct"], pct)
        if flow > limit and (over_pct is None or pct > over_pct):
            out["over"], over_pct = way, pct
    return out


# -- conditions -----------------------------------------------------------------------------------
def over_limit(market: Mapping, rows: Sequence[Mapping], limits: Limits | None) -> Condition:
    """The last slot's import or export above its limit."""
    uuid, name = market["uuid"], market["name"]
    if not rows or limits is None or not limits.any:
        return Condition("over_limit", uuid, name, False)
    row = rows[-1]
    load = flow_load(row, limits)
    way = load["over"]
    if way is None:
        return Condition("over_limit", uuid, name, False)
    flow = float(row[f"{way}_kwh"])
    limit = float(limits.import_kwh if way == "import" else limits.export_kwh)
    message = (
        f"{way} {_num(flow)} kWh over its limit of {_num(limit)} kWh per slot in slot "
        f"{_time(row.get('slot'))} ({load[f'{way}_pct']:.0f} %)"
    )
    return Condition("over_limit", uuid, name, True, message, flow, limit)


def model_cap(model: Mapping | None, fee_max: float) -> float | None:
    """The highest fee a tariff model may set [ct/kWh] (its own cap, else the exchange's maximum);
    None for a manual fee."""
    if not model:
        return None
    for key in ("max_fee_ct_per_kwh", "cap_ct_per_kwh"):
        if model.get(key) is not None:
            return min(float(model[key]), fee_max)
    return fee_max


def fee_at_cap(market: Mapping, rows: Sequence[Mapping], model: Mapping | None, fee_max: float) -> Condition:
    """A tariff model's fee in force at its cap for the last ``FEE_AT_CAP_SLOTS`` slots."""
    uuid, name = market["uuid"], market["name"]
    cap = model_cap(model, fee_max)
    recent = list(rows[-FEE_AT_CAP_SLOTS:])
    if cap is None or len(recent) < FEE_AT_CAP_SLOTS:
        return Condition("fee_at_cap", uuid, name, False)
    if all(r.get("fee_ct_per_kwh") is not None and r["fee_ct_per_kwh"] >= cap - 1e-9 for r in recent):
        hours = FEE_AT_CAP_SLOTS * 15 / 60
        message = (
            f"fee at the model's cap of {_num(cap)} ct/kWh for {FEE_AT_CAP_SLOTS} slots (about "
            f"{_num(hours)} h) up to slot {_time(recent[-1].get('slot'))}: the model cannot steer further"
        )
        return Condition("fee_at_cap", uuid, name, True, message, recent[-1]["fee_ct_per_kwh"], cap)
    return Condition("fee_at_cap", uuid, name, False)


def revenue_spike(market: Mapping, rows: Sequence[Mapping]) -> Condition:
    """The last slot's fee revenue far above the highest of the day of slots before it."""
    uuid, name = market["uuid"], market["name"]
    before = [r.get("market_fee_revenue") for r in rows[-REVENUE_LOOK_BACK - 1 : -1]]
    before = [float(v) for v in before if v is not None]
    if len(before) < REVENUE_SPIKE_MIN_HISTORY:
        return Condition("revenue_spike", uuid, name, False)
    last = float(rows[-1].get("market_fee_revenue") or 0.0)
    highest = max(before)
    threshold = max(REVENUE_SPIKE_FACTOR * highest, REVENUE_SPIKE_MIN_CT)
    if last > threshold:
        message = (
            f"fee revenue {_num(last)} ct in slot {_time(rows[-1].get('slot'))}, above "
            f"{_num(REVENUE_SPIKE_FACTOR)} x the day's highest of {_num(highest)} ct"
        )
        return Condition("revenue_spike", uuid, name, True, message, last, threshold)
    return Condition("revenue_spike", uuid, name, False)


def command_refused(market: Mapping, last_command: Mapping | None) -> Condition:
    """The market's last answered fee command was refused (until a later one is applied)."""
    uuid, name = market["uuid"], market["name"]
    if not last_command or last_command.get("status") != "refused":
        return Condition("command_refused", uuid, name, False)
    message = (
        f"fee {_num(float(last_command['fee_ct_per_kwh']))} ct/kWh refused: "
        f"{last_command.get('reason') or 'no reason given'}"
    )
    return Condition("command_refused", uuid, name, True, message, float(last_command["fee_ct_per_kwh"]))


def market_conditions(
    market: Mapping,
    rows: Sequence[Mapping],
    limits: Limits | None,
    model: Mapping | None,
    fee_max: float,
    last_command: Mapping | None,
) -> list[Condition]:
    """Every market rule for one market (``{"uuid", "name"}``), from its history ``rows``
    (oldest first), its limits, its tariff model (None: manual) and its last answered command."""
    return [
        over_limit(market, rows, limits),
        fee_at_cap(market, rows, model, fee_max),
        revenue_spike(market, rows),
        command_refused(market, last_command),
    ]


def fmt_wall(ts: float) -> str:
    """Wall-clock time "HH:MM:SS UTC" (the server's alerts name the zone they were made in)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S UTC")


def liveness_conditions(
    now: float,
    last_cycle_at: float | None,
    slot_seconds: float | None,
    unreachable_since: float | None,
    reason: str | None = None,
    finished: bool = False,
) -> list[Condition]:
    """The exchange's own rules: no new slot for ``NO_SLOT_FACTOR`` slot lengths (live mode only,
    not after the scenario's end), and the exchange unreachable since ``unreachable_since``."""
    out = []
    if (
        not finished
        and slot_seconds
        and last_cycle_at is not None
        and unreachable_since is None
        and now - last_cycle_at > max(NO_SLOT_FACTOR * slot_seconds, NO_SLOT_MIN_S)
    ):
        waited = now - last_cycle_at
        message = (
            f"no new slot since {fmt_wall(last_cycle_at)} ({waited:.0f} s; a slot lasts "
            f"{_num(slot_seconds)} s)"
        )
        threshold = max(NO_SLOT_FACTOR * slot_seconds, NO_SLOT_MIN_S)
        out.append(Condition("no_new_slot", EXCHANGE, "exchange", True, message, waited, threshold))
    else:
        out.append(Condition("no_new_slot", EXCHANGE, "exchange", False))
    if unreachable_since is not None:
        message = f"the exchange has not answered since {fmt_wall(unreachable_since)}"
        if reason:
            message += f" ({reason})"
        out.append(Condition("exchange_unreachable", EXCHANGE, "exchange", True, message))
    else:
        out.append(Condition("exchange_unreachable", EXCHANGE, "exchange", False))
    return out


# -- the store ------------------------------------------------------------------------------------
_ALERT_SLOTS = ("started_slot", "firing_slot", "resolved_slot")  # Integer numbers in the table (app.slots)


class AlertStore:
    """Alert instances and the console's limit changes of one exchange."""

    def __init__(self, engine: Engine, exchange: str = "embedded"):
        self.engine = engine
        self.exchange = exchange

    # limits
    def set_limits(
        self,
        market_uuid: str,
        market_name: str,
        import_kwh: float | None,
        export_kwh: float | None,
        user: str,
    ) -> None:
        """The operator sets a market's limits (None: no limit that way); kept as an audit row."""
        for value in (import_kwh, export_kwh):
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise ValueError("a limit is a positive number of kWh per slot, or empty for none")
        with self.engine.begin() as conn:
            conn.execute(
                insert(limit_changes).values(
                    exchange=self.exchange,
                    market_uuid=market_uuid,
                    market_name=market_name,
                    import_kwh=import_kwh,
                    export_kwh=export_kwh,
                    changed_by=user,
                    changed_at=time.time(),
                )
            )

    def limit_overrides(self) -> dict[str, Limits]:
        """market uuid → the newest limits set in the console."""
        c = limit_changes.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(limit_changes).where(c.exchange == self.exchange).order_by(c.id)).all()
        return {r.market_uuid: Limits(r.import_kwh, r.export_kwh, "console") for r in rows}

    def limit_changes(self, limit: int = 200) -> list[dict]:
        """The audit of limit changes, newest first."""
        c = limit_changes.c
        query = select(limit_changes).where(c.exchange == self.exchange).order_by(c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # alerts
    def open_alerts(self) -> list[dict]:
        """Pending and firing alerts, firing first, newest first."""
        a = alerts.c
        query = (
            select(alerts).where(a.exchange == self.exchange, a.state.in_(OPEN_STATES)).order_by(a.id.desc())
        )
        with self.engine.connect() as conn:
            rows = [slots.columns_to_labels(dict(r._mapping), _ALERT_SLOTS) for r in conn.execute(query)]
        return sorted(rows, key=lambda r: r["state"] != ALERTING)

    def history(self, limit: int = 200) -> list[dict]:
        """Alerts that fired and were resolved, newest first."""
        a = alerts.c
        query = (
            select(alerts)
            .where(a.exchange == self.exchange, a.state == RESOLVED, a.firing_at.is_not(None))
            .order_by(a.resolved_at.desc(), a.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [slots.columns_to_labels(dict(r._mapping), _ALERT_SLOTS) for r in conn.execute(query)]

    def alert(self, alert_id: int) -> dict | None:
        a = alerts.c
        with self.engine.connect() as conn:
            row = conn.execute(select(alerts).where(a.exchange == self.exchange, a.id == alert_id)).first()
        return None if row is None else slots.columns_to_labels(dict(row._mapping), _ALERT_SLOTS)

    def acknowledge(self, alert_id: int, user: str) -> bool:
        """Mark an open alert as seen by ``user``; False when it is not open or already acked."""
        a = alerts.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(alerts)
                .where(
                    a.exchange == self.exchange,
                    a.id == alert_id,
                    a.state.in_(OPEN_STATES),
                    a.acked_by.is_(None),
                )
                .values(acked_by=user, acked_at=time.time())
            ).rowcount
        return bool(done)

    def apply(
        self, conditions: Sequence[Condition], slot: str | None, now: float | None = None
    ) -> list[tuple]:
        """Move each (rule, market) instance one evaluation on; returns the transitions
        ``(rule, market_name, old state, new state)``. Only the rules in ``conditions`` move."""
        now = time.time() if now is None else now
        slot_number = slots.to_column(slot)  # ``slot`` is a label, the table keeps its number
        a = alerts.c
        transitions = []
        # read first, write only when something moves: the agent evaluates after every poll, and
        # an idle write transaction would contend with the runner for SQLite's lock
        with self.engine.connect() as conn:
            open_rows = {
                (r.rule, r.market_uuid): r
                for r in conn.execute(
                    select(alerts).where(a.exchange == self.exchange, a.state.in_(OPEN_STATES))
                )
            }
        statements = []
        for cond in conditions:
            rule = RULES[cond.rule]
            row = open_rows.get((cond.rule, cond.market_uuid))
            if row is None and cond.active:
                fires = rule.for_evaluations <= 1
                state = ALERTING if fires else PENDING
                statements.append(
                    insert(alerts).values(
                        exchange=self.exchange,
                        rule=cond.rule,
                        market_uuid=cond.market_uuid,
                        market_name=cond.market_name,
                        state=state,
                        message=cond.message,
                        value=cond.value,
                        threshold=cond.threshold,
                        evaluations=1,
                        started_at=now,
                        started_slot=slot_number,
                        firing_at=now if fires else None,
                        firing_slot=slot_number if fires else None,
                    )
                )
                transitions.append((cond.rule, cond.market_name, None, state))
            elif row is not None and cond.active:
                values: dict = {"message": cond.message, "value": cond.value, "threshold": cond.threshold}
                if row.state == PENDING:
                    values["evaluations"] = row.evaluations + 1
                    if row.evaluations + 1 >= rule.for_evaluations:
                        values.update(state=ALERTING, firing_at=now, firing_slot=slot_number)
                        transitions.append((cond.rule, cond.market_name, PENDING, ALERTING))
                elif row.message == cond.message:
                    continue  # firing, nothing new to say: no write
                # only an open row moves (a concurrent acknowledge keeps its columns)
                statements.append(update(alerts).where(a.id == row.id, a.state == row.state).values(**values))
            elif row is not None and not cond.active:
                statements.append(
                    update(alerts)
                    .where(a.id == row.id, a.state == row.state)
                    .values(state=RESOLVED, resolved_at=now, resolved_slot=slot_number)
                )
                transitions.append((cond.rule, cond.market_name, row.state, RESOLVED))
        if statements:
            with self.engine.begin() as conn:
                for statement in statements:
                    conn.execute(statement)
        for rule, name, old, new in transitions:
            log.info("alert %s of %s: %s -> %s", rule, name, old or "normal", new)
        return transitions


def last_answered_commands(commands: Sequence[Mapping]) -> dict[str, dict]:
    """market uuid → its newest applied or refused command (``commands`` newest first)."""
    out: dict[str, dict] = {}
    for c in commands:
        if c.get("status") in ("applied", "refused"):
            out.setdefault(c["market_uuid"], dict(c))
    return out


def evaluate_market_alerts(
    ops: OperatorStore,
    store: AlertStore,
    managed: Sequence[Mapping],
    exchange_markets: Sequence[Mapping],
    fee_max: float,
    slot: str | None,
    rules: Sequence[str] = MARKET_RULES,
) -> list[tuple]:
    """Evaluate the market rules for every managed market (``market_info`` entries or
    ``{"uuid", "name"}``) from the operator's store; store the transitions."""
    limits = effective_limits(exchange_markets, store.limit_overrides())
    settings = ops.settings()
    last_commands = last_answered_commands(ops.commands(("applied", "refused"), limit=2000))
    conditions: list[Condition] = []
    for m in managed:
        market = {"uuid": m.get("area_uuid") or m.get("uuid"), "name": m["name"]}
        rows = ops.history(market["uuid"], last=HISTORY_FOR_ALERTS) if rules != ("command_refused",) else []
        setting = settings.get(market["uuid"])
        model = setting.model if setting is not None and setting.mode == "model" else None
        found = market_conditions(
            market, rows, limits.get(market["uuid"]), model, fee_max, last_commands.get(market["uuid"])
        )
        conditions += [c for c in found if c.rule in rules]
    return store.apply(conditions, slot)
