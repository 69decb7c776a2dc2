"""The admin page in Chromium: an admin adds an operator who then signs in; a viewer sees no link.

Screenshots at 1366 x 768 land in the test's tmp_path (``console.png``, ``admin.png``).
"""

from __future__ import annotations

from pathlib import Path

from console_ui import login
from selenium.webdriver.common.by import By


def test_adm001_an_admin_adds_an_operator_who_signs_in_at_once(live, dash_duo, tmp_path: Path):
    dash_duo.driver.set_window_size(1366, 768)
    login(dash_duo, "operator")
    link = dash_duo.wait_for_element("#admin-link")
    dash_duo.driver.save_screenshot(str(tmp_path / "console.png"))
    link.click()
    dash_duo.wait_for_element("#users")
    assert {
        row.get_attribute("id") for row in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#users tbody tr")
    } == {
        "user-operator",
        "user-viewer",
    }
    dash_duo.find_element("#new-username").send_keys("carol")
    dash_duo.find_element("#new-password").send_keys("carol-password")
    dash_duo.driver.find_element(By.CSS_SELECTOR, "#new-role option[value='grid_operator']").click()
    dash_duo.find_element("#add-user-button").click()
    dash_duo.wait_for_text_to_equal("#admin-message", "added carol (grid_operator)")
    dash_duo.wait_for_element("#user-carol")
    dash_duo.driver.save_screenshot(str(tmp_path / "admin.png"))
    assert live.server.extensions["gridfee"].users.get("carol").role == "grid_operator"

    # carol signs in on the same running server: no restart, no redeploy
    dash_duo.driver.get(f"{dash_duo.server_url}/logout")
    dash_duo.driver.delete_all_cookies()
    dash_duo.driver.get(f"{dash_duo.server_url}/login?next=/")
    dash_duo.wait_for_element("#username").send_keys("carol")
    dash_duo.find_element("#password").send_keys("carol-password")
    dash_duo.find_element("#login-button").click()
    dash_duo.wait_for_element(dash_duo.dash_entry_locator)
    assert dash_duo.driver.find_elements(By.CSS_SELECTOR, "#admin-link") == []  # no admin right


def test_adm002_a_viewer_has_no_users_link_and_gets_403(live, dash_duo):
    login(dash_duo, "viewer")
    assert dash_duo.driver.find_elements(By.CSS_SELECTOR, "#admin-link") == []
    dash_duo.driver.get(f"{dash_duo.server_url}/admin")
    assert "only a grid operator with the admin right" in dash_duo.wait_for_element("#admin-forbidden").text
