"""The processes of a deployment: ``web`` (:mod:`app.entry.web` builds the server, :mod:`app.entry.wsgi` is
gunicorn's module), ``clock`` (:mod:`app.entry.clock`), ``worker`` (:mod:`app.entry.worker`, What-if on
Celery), local serving (:mod:`app.entry.serve`, ``python -m app``) and the command line.
"""
