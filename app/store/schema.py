"""Tables of the store (SQLAlchemy Core). Alembic migrations are generated against ``metadata``."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
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

from app.exchange.stat_table import HISTORY_STATS

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

# The stats of every market per closed slot, packed: one row per slot and chunk of
# ``STAT_CHUNK_MARKETS`` markets (by their position in the grid). ``stats`` holds the chunk's
# markets' 15 ``app.exchange.stat_table.STAT_FIELDS`` as a zstd-compressed float64 matrix, NaN for
# "no value" (a rate when nothing traded, a percentage when its denominator is zero); the format
# is ``app.store.packed``'s. Written by the runner only, in the transaction that closes the
# slot, so a slot is either complete for every market or absent. Migration 0005 moved the rows
# of the table before it (``slot_stats``, one row per market and slot) here.
STAT_CHUNK_MARKETS = 256
slot_stat_chunks = Table(
    "slot_stat_chunks",
    metadata,
    Column("scenario", String(200), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("chunk", Integer, primary_key=True),  # markets from chunk * STAT_CHUNK_MARKETS on
    Column("slot_label", String(16), nullable=False),
    Column("n_markets", Integer, nullable=False),
    Column("stats", LargeBinary, nullable=False),
)

# The fee book: every accepted change, in the order accepted (id). What they mean (which fee is in
# force in which slot) is the rule of app.exchange.fees; app.store.fee_book keeps it here.
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
Index("ix_fee_changes_scenario_slot", fee_changes.c.scenario, fee_changes.c.applies_from_slot)

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
    # the fee book's snapshot: every market's fee (float64, market order) in fees_slot, a slot that
    # has started, so a new process reads the changes after it only (app.exchange.fees)
    Column("fees_slot", Integer, nullable=True),
    Column("fees", LargeBinary, nullable=True),
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
# console pointed at another exchange does not mix histories. Its slot columns are Integer slot
# numbers: the minutes from 2000-01-01T00:00 to the slot's start (app.slots.minutes; unique for
# every slot length Grid Singularity allows, ordered like the labels). The operator's stores
# (app.operator.store, app.operator.alerts) turn them into labels YYYY-MM-DDTHH:mm and back.

# The history store: each managed market's dso_market_stats per closed slot, as the agent got them.
op_history = Table(
    "op_history",
    metadata,
    Column("exchange", String(300), primary_key=True),
    Column("market_uuid", String(36), primary_key=True),
    Column("slot", Integer, primary_key=True),  # slot number (app.slots.minutes)
    Column("name", String(200), nullable=False),
    Column("level", Integer, nullable=False),
    Column("parent_uuid", String(36), nullable=True),
    # the statistics the operator keeps, one Float column each (app.exchange.stat_table)
    *(Column(s.column, Float, nullable=s.nullable) for s in HISTORY_STATS),
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
    Column("running_slot", Integer, nullable=True),  # slot number running when it was queued
    Column("transaction_id", String(200), nullable=True),
    Column("sent_at", Float, nullable=True),
    Column("applies_from_slot", Integer, nullable=True),  # slot number
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

# Who may sign in (console, /api/v1, the SDK face): one row per user, the password hashed
# (werkzeug's scrypt), ``markets`` the JSON list of granted market names or uuids (NULL: every
# market), ``admin`` the right to manage users on the console's admin page. ``source`` says where
# the row came from: "demo" rows (the demo users) count only in demo mode.
users = Table(
    "users",
    metadata,
    Column("username", String(200), primary_key=True),
    Column("password_hash", String(400), nullable=False),
    Column("role", String(32), nullable=False),
    Column("markets", Text, nullable=True),
    Column("admin", Boolean, nullable=False),
    Column("source", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Secrets every process of a deployment shares: in demo mode without SECRET_KEY, the generated
# ``secret_key`` (sessions, CSRF and API tokens are then valid on every worker).
app_secrets = Table(
    "app_secrets",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
# --- the console's link to a Grid Singularity exchange (GRID_API_URL=gsy+redis:// or gsy+https://) --
# One row per exchange: the aggregator the console created there (reused after a restart, so that it
# keeps the markets it selected) and what the agent's link last saw (clock, held markets, why it is
# down), as JSON; the web workers read their header and market list from it.
gsy_link = Table(
    "gsy_link",
    metadata,
    Column("exchange", String(300), primary_key=True),
    Column("aggregator_uuid", String(64), nullable=True),
    Column("state", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

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
    Column("started_slot", Integer, nullable=True),  # slot numbers (app.slots.minutes)
    Column("firing_at", Float, nullable=True),
    Column("firing_slot", Integer, nullable=True),
    Column("resolved_at", Float, nullable=True),
    Column("resolved_slot", Integer, nullable=True),
    Column("acked_by", String(200), nullable=True),
    Column("acked_at", Float, nullable=True),
)
Index("ix_alerts_state", alerts.c.exchange, alerts.c.state)
