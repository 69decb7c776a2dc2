"""gunicorn's settings for the Procfile's ``web:``; its command line sets workers, threads and bind.

The master checks the deployment once before any worker boots (``app.preflight``): a setting
that cannot work stops gunicorn with one line and exit status 4 ("App failed to load"), rather
than every worker failing at once.
"""

import logging
import sys


def on_starting(server):  # noqa: ANN001, ANN201 - a gunicorn server hook
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from app.preflight import problem

    found = problem()
    if found:
        print(f"gridfee web: refusing to start: {found}", file=sys.stderr, flush=True)
        raise SystemExit(4)
