"""Helpers of the browser tests: signing in, pages, selectors for pattern-matching ids, inputs."""

from __future__ import annotations

import json

from dash.testing.wait import until
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

SLOT_SECONDS = 0.6  # the exchange's slots in the browser tests [s]
TICK_S = 2.0  # the console's dcc.Interval: pages refresh on it [s]
PASSWORDS = {"operator": "operator", "viewer": "viewer"}
HEADER_BADGE = "#header .mantine-Badge-root"  # "live" / "stale since HH:MM (why)"


def login(dash_duo, user: str, path: str = "/") -> None:
    """Sign in as ``user`` (demo password) with the login form; lands on ``path`` with Dash loaded."""
    dash_duo.driver.get(f"{dash_duo.server_url}/login?next={path}")
    dash_duo.wait_for_element("#username").send_keys(user)
    dash_duo.find_element("#password").send_keys(PASSWORDS[user])
    dash_duo.find_element("#login-button").click()
    dash_duo.wait_for_element(dash_duo.dash_entry_locator)
    dash_duo.wait_for_element(HEADER_BADGE)


def open_page(dash_duo, path: str) -> None:
    """Load ``path`` of the console (already signed in); waits for Dash and the header."""
    dash_duo.driver.get(f"{dash_duo.server_url}{path}")
    dash_duo.wait_for_element(dash_duo.dash_entry_locator)
    dash_duo.wait_for_element(HEADER_BADGE)


def pid(kind: str, market: str, **extra: str) -> str:
    """CSS selector of the component with id ``{"type": kind, "market": market, **extra}``.

    Dash renders a pattern-matching id as the JSON of the dict with sorted keys, no spaces.
    """
    ident = json.dumps({"type": kind, "market": market, **extra}, sort_keys=True, separators=(",", ":"))
    return f"[id='{ident}']"


def type_into(dash_duo, selector: str, text: str) -> WebElement:
    """Replace what a (Mantine) text or number input holds by typing ``text``."""
    element = dash_duo.wait_for_element(selector)
    element.click()
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    if text:
        element.send_keys(text)
    return element


def choose(dash_duo, selector: str, label: str, timeout: float = 10) -> None:
    """Pick the option ``label`` of the ``dmc.Select`` at ``selector``: open it, click the option.

    Mantine keeps every Select's options in the page; the one to click is the shown one.
    """
    dash_duo.wait_for_element(selector).click()
    xpath = f"//div[@role='option'][normalize-space(.)='{label}']"

    def shown_option():
        return next((o for o in dash_duo.driver.find_elements(By.XPATH, xpath) if o.is_displayed()), None)

    until(shown_option, timeout, msg=f"option {label!r} of {selector} not shown").click()
    until(
        lambda: dash_duo.find_element(selector).get_attribute("value") == label,
        timeout,
        msg=f"{selector} does not show {label!r}",
    )


def grid_rows(dash_duo, grid_id: str) -> list[dict[str, str]]:
    """The rows an AG Grid shows: ``{"row-id": ..., <col-id>: cell text}``, pinned columns merged."""
    return dash_duo.driver.execute_script(
        """
        const rows = {};
        for (const row of document.querySelectorAll(`#${arguments[0]} .ag-row[row-id]`)) {
            const out = rows[row.getAttribute('row-id')] ??= {'row-id': row.getAttribute('row-id')};
            for (const cell of row.querySelectorAll('.ag-cell[col-id]')) {
                out[cell.getAttribute('col-id')] = cell.textContent.trim();
            }
        }
        return Object.values(rows);
        """,
        grid_id,
    )
