"""The Dash console: pages with their callbacks, layout components, login and the admin page.

It reaches data only through the operator store (:mod:`app.operator.store`) and the client
(:mod:`app.client`); it never imports the exchange core or runs SQL.
"""
