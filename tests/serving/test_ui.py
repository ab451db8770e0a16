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


def test_text_colors_keep_wcag_aa_contrast() -> None:
    """Every text color of the stylesheet against the background it is drawn on: at least 4.5:1."""
    import re
    from pathlib import Path

    import pitstop.serving.ui as ui

    css = (Path(ui.__file__).parent / "static" / "ui.css").read_text()
    colors = dict(re.findall(r"--(\w+):\s*(#[0-9a-fA-F]{6})", css))

    def luminance(hex_color: str) -> float:
        channels = [int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    def contrast(a: str, b: str) -> float:
        hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
        return (hi + 0.05) / (lo + 0.05)

    pairs = [(colors[c], colors["bg"]) for c in ("ink", "muted", "accent", "bad", "ok")]
    pairs += [(colors["ink"], colors["soft"]), (colors["muted"], colors["soft"]), ("#ffffff", "#102a43"),
              ("#ffffff", colors["accent"]), ("#ffffff", "#243b53")]
    for fg, bg in pairs:
        assert contrast(fg, bg) >= 4.5, (fg, bg, round(contrast(fg, bg), 2))
