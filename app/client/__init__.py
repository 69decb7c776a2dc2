"""Python client of the Grid Operator API (see client.py and agent.py)."""

from app.client.agent import GridOperatorAgent
from app.client.client import ApiClientError, ExchangeUnavailable, GridOperatorClient

__all__ = ["ApiClientError", "ExchangeUnavailable", "GridOperatorAgent", "GridOperatorClient"]
