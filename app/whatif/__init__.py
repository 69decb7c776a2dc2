"""What-if: replaying the scenario under candidate tariffs and comparing them (no Dash).

:mod:`.runs` runs and compares, :mod:`.queue` puts runs on Celery over Redis, :mod:`.quota` limits
the runs per user and at once.
"""
