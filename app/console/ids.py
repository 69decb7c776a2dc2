"""Component ids shared by layouts and callbacks (pattern-matching ids are built where used)."""

LOCATION = "location"
TICK = "tick"
HEADER = "header"
NOTIFICATIONS = "notifications"
SERVER_OK = "server-ok"  # what the header's server callback last answered (the exchange's state)
SERVER_OK_AT = "server-ok-at"  # when it answered, on the browser's clock [ms]
CONNECTION = "connection"  # {"offline", "since_ms", "reason", "exchange_stale"}: the browser's view
OFFLINE_BANNER = "offline-banner"
BROWSER_TZ = "browser-tz"  # the browser's IANA time zone, for wall-clock times

ALERTS_ACTIVE = "alerts-active"
ALERTS_HISTORY = "alerts-history"
ALERTS_MESSAGE = "alerts-message"
ALERTS_LIMITS = "alerts-limits"
ALERTS_LIMIT_AUDIT = "alerts-limit-audit"

MAP = "grid-map"
MAP_INFO = "grid-map-info"
MAP_SLOT = "grid-map-slot"
MAP_LIST = "grid-map-list"

OVERVIEW_GRID = "overview-grid"
OVERVIEW_SLOT = "overview-slot"
EXPORT_RANGE = "export-range"
EXPORT_FROM = "export-from"
EXPORT_TO = "export-to"
EXPORT_BUTTON = "export-button"
EXPORT_DOWNLOAD = "export-download"
EXPORT_MESSAGE = "export-message"

MARKET_COMPARE = "market-compare"
MARKET_CARDS = "market-cards"
MARKET_ID = "market-id"
FEE_TIMING = "fee-timing"  # the send point as the server sees it, refreshed every TICK
FEE_TIMING_LOCAL = "fee-timing-local"  # the same on the browser's clock
FEE_TARGET = "fee-target"  # the slot a fee queued now is in force from; changes twice a slot
FEE_TIMING_TICK = "fee-timing-tick"  # a fast browser-only interval that turns the queue buttons

QUEUE_GRID = "queue-grid"
AUDIT_GRID = "audit-grid"
QUEUE_TITLE = "queue-title"

WHATIF_SCENARIO = "whatif-scenario"
WHATIF_DAYS = "whatif-days"
WHATIF_MARKETS = "whatif-markets"
WHATIF_LIMIT = "whatif-limit"
WHATIF_COUNT = "whatif-count"
WHATIF_RUN = "whatif-run"
WHATIF_CANCEL = "whatif-cancel"
WHATIF_MESSAGE = "whatif-message"
WHATIF_SPEC = "whatif-spec"
WHATIF_PROGRESS = "whatif-progress"
WHATIF_RESULTS = "whatif-results"
WHATIF_STATE = "whatif-state"
WHATIF_GRID = "whatif-grid"
WHATIF_CHART_MARKET = "whatif-chart-market"
WHATIF_FLOWS = "whatif-flows"
WHATIF_FEE = "whatif-fee"
WHATIF_DURATION = "whatif-duration"
WHATIF_APPLY_MESSAGE = "whatif-apply-message"
WHATIF_EXPORT = "whatif-export"
WHATIF_DOWNLOAD = "whatif-download"
