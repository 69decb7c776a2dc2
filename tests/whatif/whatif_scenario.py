"""The what-if tests' scenario: 2 communities x 3 houses, generated (a day runs in ~0.1 s)."""

from app.exchange.generate import generate_scenario

SCENARIO = generate_scenario(2, 3, seed=4)
