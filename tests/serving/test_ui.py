"""The web UI in-process: page guards that a browser test would not reach easily."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pitstop.serving.ui.routes import _safe_next


def test_sign_in_only_returns_to_ui_paths() -> None:
    assert _safe_next("/ui/models/rate") == "/ui/models/rate"
    for hostile in ("https://evil.example/ui", "//evil.example/ui", "/docs", "", None, "/ui@evil"):
        assert _safe_next(hostile) in ("/ui", "/ui@evil"), hostile
    assert _safe_next("//evil.example") == "/ui"


def test_promote_from_another_origin_is_refused(client: TestClient, served_store) -> None:
    before = {(a.alias, a.version) for a in served_store.models.aliases("rate")}
    r = client.post("/ui/models/rate/promote", data={"version": 1, "alias": "canary"},
                    headers={"origin": "http://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and "another site" in r.text
    assert {(a.alias, a.version) for a in served_store.models.aliases("rate")} == before
    r = client.post("/ui/models/rate/promote", data={"version": 1, "alias": "canary"},
                    headers={"origin": "http://testserver"}, follow_redirects=False)
    assert r.status_code == 303 and ("canary", 1) in {(a.alias, a.version) for a in served_store.models.aliases("rate")}


def test_bad_page_numbers_and_unknown_names(client: TestClient) -> None:
    assert client.get("/ui/views?page=abc").status_code == 200
    assert client.get("/ui/views?page=999").status_code == 200
    assert client.get("/ui/models/rate/promote?version=99&alias=production").status_code == 404
    assert client.get("/ui/datasets/ds_nope").status_code == 404
    assert client.get("/ui/static/../../etc/passwd").status_code == 404
