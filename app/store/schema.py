"""Tables of the store (SQLAlchemy Core). Alembic migrations are generated against ``metadata``."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

markets = Table(
    "markets",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("scenario", String(200), nullable=False, index=True),
    Column("position", Integer, nullable=False),  # index in the compiled grid
    Column("name", String(200), nullable=False),
    Column("level", Integer, nullable=False),  # 0 grid, 1 community, 2 house
    Column("parent_uuid", String(36), nullable=True),
)

# One row per market per closed slot. Written by the runner only, in the transaction that
# closes the slot, so a slot is either complete for every market or absent.
slot_stats = Table(
    "slot_stats",
    metadata,
    Column("market_uuid", String(36), ForeignKey("markets.uuid"), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("slot_label", String(16), nullable=False),
    Column("min_trade_rate", Float),  # ct/kWh, NULL when nothing traded
    Column("median_trade_rate", Float),
    Column("avg_trade_rate", Float),
    Column("max_trade_rate", Float),
    Column("total_traded_energy_kWh", Float, nullable=False),
    Column("import_kwh", Float, nullable=False),
    Column("export_kwh", Float, nullable=False),
    Column("self_sufficiency", Float),  # %, NULL when nothing consumed
    Column("self_consumption", Float),  # %, NULL when nothing produced
    Column("market_fee", Float, nullable=False),  # ct/kWh in force
    Column("next_market_fee", Float, nullable=False),  # ct/kWh queued for the next slot
    Column("market_fee_revenue", Float, nullable=False),  # ct
    Column("unmatched_kwh", Float, nullable=False),
    Column("consumption_kwh", Float, nullable=False),
    Column("production_kwh", Float, nullable=False),
)
Index("ix_slot_stats_slot", slot_stats.c.slot)

# The fee book: every accepted change. The fee of a market in slot n is the newest row (by id)
# with applies_from_slot <= n, else the scenario's initial fee.
fee_changes = Table(
    "fee_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scenario", String(200), nullable=False),
    Column("market_uuid", String(36), ForeignKey("markets.uuid"), nullable=False),
    Column("fee_ct_per_kwh", Float, nullable=False),
    Column("received_slot", Integer, nullable=False),
    Column("applies_from_slot", Integer, nullable=False),
    Column("source", String(200), nullable=False),
    Column("transaction_id", String(200), nullable=True),
    Column("created_at", Float, nullable=False),  # unix seconds
)
Index("ix_fee_changes_market_slot", fee_changes.c.market_uuid, fee_changes.c.applies_from_slot)

# The exchange's own state, one row per scenario: the running slot and the asset state after
# the last closed slot. Its row is also the lock that orders fee acceptance and slot opening.
exchange_state = Table(
    "exchange_state",
    metadata,
    Column("scenario", String(200), primary_key=True),
    Column("scenario_hash", String(64), nullable=False),
    Column("running_slot", Integer, nullable=False),
    Column("last_closed_slot", Integer, nullable=True),
    Column("slot_started_at", Float, nullable=False),  # unix seconds
    Column("slot_seconds", Float, nullable=False),
    Column("asset_state", LargeBinary, nullable=True),  # np.savez of AssetState
    Column("updated_at", Float, nullable=False),
)

# Batches already answered, by (scenario, user, transaction_id): a resent batch gets the stored
# answer instead of applying its fees twice. Written in the transaction that accepts its fees.
batch_transactions = Table(
    "batch_transactions",
    metadata,
    Column("scenario", String(200), primary_key=True),
    Column("username", String(200), primary_key=True),
    Column("transaction_id", String(200), primary_key=True),
    Column("response", Text, nullable=False),  # JSON
    Column("created_at", Float, nullable=False),
)


# --- the operator side (the console and its agent); it knows the exchange only through the API --
# `exchange` keys the rows by the exchange they came from ("embedded" or GRID_API_URL), so a
# console pointed at another exchange does not mix histories.

# The history store: each managed market's dso_market_stats per closed slot, as the agent got them.
op_history = Table(
    "op_history",
    metadata,
    Column("exchange", String(300), primary_key=True),
    Column("market_uuid", String(36), primary_key=True),
    Column("slot", String(16), primary_key=True),  # slot label YYYY-MM-DDTHH:mm
    Column("name", String(200), nullable=False),
    Column("level", Integer, nullable=False),
    Column("parent_uuid", String(36), nullable=True),
    Column("min_trade_rate", Float),
    Column("median_trade_rate", Float),
    Column("avg_trade_rate", Float),
    Column("max_trade_rate", Float),
    Column("total_traded_energy_kWh", Float, nullable=False),
    Column("import_kwh", Float, nullable=False),
    Column("export_kwh", Float, nullable=False),
    Column("self_sufficiency", Float),
    Column("self_consumption", Float),
    Column("market_fee", Float, nullable=False),
    Column("next_market_fee", Float, nullable=False),
    Column("market_fee_revenue", Float, nullable=False),
    Column("unmatched_kwh", Float, nullable=False),
)
Index("ix_op_history_slot", op_history.c.exchange, op_history.c.slot)

# How each market's fee is set: by hand (a value) or by a tariff model (its parameters as JSON).
fee_settings = Table(
    "fee_settings",
    metadata,
    Column("exchange", String(300), primary_key=True),
    Column("market_uuid", String(36), primary_key=True),
    Column("mode", String(20), nullable=False),  # "manual" | "model"
    Column("manual_fee_ct_per_kwh", Float, nullable=True),
    Column("model", Text, nullable=True),  # JSON of app.tariffs.registry.FeeModel
    Column("changed_by", String(200), nullable=False),
    Column("changed_at", Float, nullable=False),
)

# Every fee command the console sends, with why and what became of it:
# queued -> sending -> applied | refused, or queued -> superseded (a later change for the same
# market before it was sent). `transaction_id` is fixed when a command is claimed for sending, so
# a batch resent after a crash is recognised by the exchange and applied once.
fee_commands = Table(
    "fee_commands",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exchange", String(300), nullable=False),
    Column("market_uuid", String(36), nullable=False),
    Column("market_name", String(200), nullable=False),
    Column("fee_ct_per_kwh", Float, nullable=False),
    Column("status", String(20), nullable=False),
    Column("source", String(500), nullable=False),  # "manual:<user>" or "model:<summary>"
    Column("created_by", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("running_slot", String(16), nullable=True),  # slot running when it was queued
    Column("transaction_id", String(200), nullable=True),
    Column("sent_at", Float, nullable=True),
    Column("applies_from_slot", String(16), nullable=True),
    Column("reason", Text, nullable=True),  # why it was refused
)
Index("ix_fee_commands_status", fee_commands.c.exchange, fee_commands.c.status)

# The Grid Singularity SDK face (app.api.gsy_compat). An aggregator is a named client of one
# user; a selection says which market an aggregator manages. The outbox holds the websocket
# frames other than the per-slot ``market`` event (command replies, selected_by_device) until the
# worker that holds the socket sends them: the POST that produces a reply may reach another
# worker than the one holding the socket.
gsy_aggregators = Table(
    "gsy_aggregators",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("scenario", String(200), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_gsy_aggregators_owner", gsy_aggregators.c.scenario, gsy_aggregators.c.owner)

gsy_selections = Table(
    "gsy_selections",
    metadata,
    Column("aggregator_uuid", String(36), ForeignKey("gsy_aggregators.uuid"), primary_key=True),
    Column("device_uuid", String(36), primary_key=True),
    Column("created_at", Float, nullable=False),
)

gsy_outbox = Table(
    "gsy_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(100), nullable=False),  # "aggregator:<uuid>" or "area:<uuid>"
    Column("payload", Text, nullable=False),  # the frame's JSON
    Column("created_at", Float, nullable=False),
)
Index("ix_gsy_outbox_channel", gsy_outbox.c.channel, gsy_outbox.c.id)

# Flow limits the operator set in the console, one row per change (the audit of limits): a
# market's limit is its newest row, else the exchange's (the scenario's). NULL: no limit that way.
limit_changes = Table(
    "limit_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exchange", String(300), nullable=False),
    Column("market_uuid", String(36), nullable=False),
    Column("market_name", String(200), nullable=False),
    Column("import_kwh", Float, nullable=True),  # kWh per slot
    Column("export_kwh", Float, nullable=True),  # kWh per slot
    Column("changed_by", String(200), nullable=False),
    Column("changed_at", Float, nullable=False),  # unix seconds
)
Index("ix_limit_changes_market", limit_changes.c.exchange, limit_changes.c.market_uuid, limit_changes.c.id)

# Alerts, one row per instance of a rule (Grafana's words): pending -> alerting -> resolved, or
# pending -> resolved without ever firing. Every transition keeps its wall-clock time and the
# simulated slot it was evaluated on; acknowledging is separate from resolving.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exchange", String(300), nullable=False),
    Column("rule", String(40), nullable=False),
    Column("market_uuid", String(36), nullable=False),  # "" for the exchange as a whole
    Column("market_name", String(200), nullable=False),
    Column("state", String(20), nullable=False),  # pending | alerting | resolved
    Column("message", Text, nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("evaluations", Integer, nullable=False),  # consecutive evaluations the condition held
    Column("started_at", Float, nullable=False),
    Column("started_slot", String(16), nullable=True),
    Column("firing_at", Float, nullable=True),
    Column("firing_slot", String(16), nullable=True),
    Column("resolved_at", Float, nullable=True),
    Column("resolved_slot", String(16), nullable=True),
    Column("acked_by", String(200), nullable=True),
    Column("acked_at", Float, nullable=True),
)
Index("ix_alerts_state", alerts.c.exchange, alerts.c.state)
