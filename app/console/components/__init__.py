"""Layout building blocks of the console: pure functions from data to Dash components and figures.

No callbacks and no I/O here: pages in ``app/pages`` fetch the data, call these functions and wire
the callbacks, so every piece can be unit-tested without a browser.

- :mod:`app.console.components.formatting`: numbers with units, "–" for missing values, the colour palette.
- :mod:`.market_charts`: a market's six figures and the ``Patch`` objects that append slots.
- :mod:`app.console.components.overview_table`: the dash-ag-grid overview of all managed markets.
- :mod:`app.console.components.header`: the header bar (connection, slot, fee deadline, user).
"""
