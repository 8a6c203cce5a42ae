"""Page-test helpers: a browser-like client per user, logged in through the login form."""
from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD


class Page:
    """A logged-in test client with the language fixed in the session."""

    def __init__(self, app, username: str, lang: str):
        self.client = app.test_client()
        self.username = username
        self.client.get(f"/lang/{lang}")
        resp = self.client.post("/login", data={"username": username, "password": PASSWORD})
        assert resp.status_code == 302, resp.get_data(as_text=True)

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def post(self, path, data=None, **kw):
        return self.client.post(path, data=data or {}, **kw)

    def version(self, case_id: int) -> str:
        """The case version the case page carries in its forms."""
        html = self.get(f"/cases/{case_id}").get_data(as_text=True)
        return re.search(r'data-version="(\d+)"', html).group(1)

    def act(self, case_id: int, action: str, fields: dict | None = None, version=None, **kw):
        data = {f"{action}-version": version if version is not None else self.version(case_id)}
        for key, value in (fields or {}).items():
            data[f"{action}-{key}"] = value
        return self.post(f"/cases/{case_id}/{action}", data=data, **kw)


@pytest.fixture
def page(app):
    """page('emp') -> the emp user's client, in English (page('emp', 'zh_CN') for Chinese)."""
    cache = {}

    def as_user(username: str, lang: str = "en") -> Page:
        key = (username, lang)
        if key not in cache:
            cache[key] = Page(app, username, lang)
        return cache[key]
    return as_user
