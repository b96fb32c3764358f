"""The explain page's frontend modules, imported by the browser while it is idle on another page: the names
exist in the installed Streamlit, the addresses are relative, and the script is sent once per session (the
browser side is in test_dashboard_browser.py)."""

from __future__ import annotations

import re

import pytest
from drivers import MODELS_DIR_VAR, PAGES, open_page

from dashboard import prefetch

ADDRESS = re.compile(r"\./static/js/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.js")


def frontend_entry() -> str:
    """The frontend's entry module, which loads each element's module on first use."""
    (entry,) = prefetch.module_files("index")
    return entry.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", prefetch.EXPLAIN_MODULES)
def test_each_module_is_one_file_the_frontend_loads_lazily(name):
    files = prefetch.module_files(name)
    assert len(files) == 1, f"{name}: {[path.name for path in files]} in {prefetch.STATIC_JS}"
    assert re.search(r"import\(\s*[`'\"]\./" + re.escape(files[0].name) + r"[`'\"]\s*\)", frontend_entry()), (
        f"{files[0].name} is no longer an element module that Streamlit's frontend imports on first use")
    assert prefetch.ADDRESS.format(files[0].name) in prefetch.addresses()


def test_a_longer_name_is_not_taken_for_the_module():
    assert all(path.name.startswith("Progress.") for path in prefetch.module_files("Progress"))  # not ProgressBar


def test_the_script_names_relative_static_addresses_only():
    addresses = prefetch.addresses()
    assert len(addresses) == len(prefetch.EXPLAIN_MODULES)
    assert all(ADDRESS.fullmatch(address) for address in addresses), addresses
    script = prefetch.script(addresses)
    assert re.findall(r'"([^"]*)"', script) == list(addresses)  # no other string: no other address
    assert "//" not in script  # neither "http://..." nor "//host/..."
    assert "requestIdleCallback" in script and "setTimeout" in script


def sidebar_html(app) -> list[str]:
    return [element.value for element in app.sidebar.get("html")]


def test_the_script_is_sent_once_per_session(monkeypatch, tmp_path):
    monkeypatch.setenv(MODELS_DIR_VAR, str(tmp_path))  # no models: the pages stay light
    app = open_page()
    assert not app.exception
    assert sidebar_html(app) == [prefetch.script(prefetch.addresses())]
    assert app.sidebar.get("html")[0].proto.unsafe_allow_javascript
    app.run()
    assert not app.exception and sidebar_html(app) == []  # a rerun sends nothing more
    app.switch_page(PAGES[2]).run()
    assert not app.exception and sidebar_html(app) == []  # nor does another page of the same session
    assert sidebar_html(open_page()) == [prefetch.script(prefetch.addresses())]  # a new session gets it
