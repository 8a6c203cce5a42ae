"""Small checks the API tests share: a JSON error of the contract's shape, a success, a tick."""


def err(resp, status):
    """The response has `status` and the body {"error": {"code", "message"}}; answers the error."""
    assert resp.status_code == status, (resp.status_code, resp.get_json())
    body = resp.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]


def ok(resp, status=200):
    assert resp.status_code == status, (resp.status_code, resp.get_json())
    return resp.get_json()


def tick(app, today):
    """`flask --app wsgi tick --today TODAY`, which must succeed; answers what it printed."""
    result = app.test_cli_runner().invoke(args=["tick", "--today", today])
    assert result.exit_code == 0, result.output
    return result.stdout
