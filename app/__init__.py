"""Grid Fee Console: a distribution grid operator's console over a (simulated or real) energy exchange.

One folder per part; imports go down this list, never up (README, "Layout"):

- ``app/entry/``: the processes — web (``create_app``, gunicorn's ``wsgi``), clock, What-if worker,
  local ``serve`` and the command line;
- ``app/console/``: the Dash console (pages, components, login, admin); it reads only through the
  operator store and the client;
- ``app/whatif/``: What-if runs, their queue, jobs, results and the quota;
- ``app/api/``: the Grid Operator API (and the gsy-e-sdk face) over the exchange's store;
- ``app/client/``: the clients of an exchange (ours over HTTP or in process, Grid Singularity's);
- ``app/operator/``: the grid operator's agent, its store, the send point, KPIs, backtests;
- ``app/tariffs/``: the tariff models (pure);
- ``app/store/``: the exchange's persistence (schema, repository, locks, migrations);
- ``app/exchange/``: the exchange core — scenario, grid, matching, statistics, fee book (no web
  framework, no database);
- ``app/config.py``, ``app/slots.py``, ``app/security.py``, ``app/export/``: shared by the parts above.

Importing ``app`` imports nothing: the command-line tools start without Flask or Dash.
"""
