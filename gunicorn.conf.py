"""gunicorn's settings for the Procfile's ``web:``; its command line sets workers, threads and bind.

The master checks the deployment once before any worker boots (``app.entry.preflight``): a setting
that cannot work stops gunicorn with one line and exit status 4 ("App failed to load"), rather
than every worker failing at once.
"""

import logging
import sys

# gunicorn's own errors (a header too large: 431, ...) as JSON, like the app's on the API paths
from app.security import gunicorn_json_errors  # noqa: E402

gunicorn_json_errors()

# Keep idle client connections open longer than the console's 2-s poll (``dcc.Interval``): with
# gunicorn's default of 2 s every poll raced the server closing its connection.
keepalive = 5


def on_starting(server):  # noqa: ANN001, ANN201 - a gunicorn server hook
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from app.entry.preflight import problem

    found = problem()
    if found:
        print(f"gridfee web: refusing to start: {found}", file=sys.stderr, flush=True)
        raise SystemExit(4)


def post_worker_init(worker):  # noqa: ANN001, ANN201 - a gunicorn server hook
    """On SIGTERM, also tell the app, so that its websockets close and the worker exits in time.

    A websocket holds its thread until the client leaves; without this a restart would wait for
    the whole graceful timeout. The SDK reconnects (to a live worker) on its own.
    """
    import signal

    stop = getattr(worker.wsgi, "extensions", {}).get("gridfee_stop")
    if stop is None:
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handle_term(signum, frame):  # noqa: ANN001, ANN202
        stop.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, handle_term)
