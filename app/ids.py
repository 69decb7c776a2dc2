"""Component ids shared by layouts and callbacks (pattern-matching ids are built where used)."""

LOCATION = "location"
TICK = "tick"
HEADER = "header"
NOTIFICATIONS = "notifications"

OVERVIEW_GRID = "overview-grid"
OVERVIEW_SLOT = "overview-slot"
EXPORT_RANGE = "export-range"
EXPORT_BUTTON = "export-button"
EXPORT_DOWNLOAD = "export-download"
EXPORT_MESSAGE = "export-message"

MARKET_COMPARE = "market-compare"
MARKET_CARDS = "market-cards"
MARKET_ID = "market-id"

QUEUE_GRID = "queue-grid"
AUDIT_GRID = "audit-grid"
SEND_NOW = "send-now"
SEND_MESSAGE = "send-message"
