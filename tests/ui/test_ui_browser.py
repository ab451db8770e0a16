"""The web UI in a real browser (Debian's headless Chromium driven by Selenium) against a real `pitstop serve`
on the example repo, with auth on.

Set PITSTOP_UI_SCREENSHOTS=docs/ui to refresh the screenshots docs/ui.md shows.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.conftest import kafka_bootstrap  # noqa: F401  (the session's Tansu broker)
from tests.integration.kafka_broker import create_topic
from tests.integration.serve_process import ServeProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

SHOTS = os.environ.get("PITSTOP_UI_SCREENSHOTS")
MANY_VIEWS = '''
from datetime import timedelta
from pitstop import FeatureView, Field, Float32
from entities import driver
from sources import driver_stats_source

# 1,000 small views over one source: the UI's lists must page them
for i in range(1000):
    globals()[f"bulk_{i:04d}"] = FeatureView(f"bulk_{i:04d}", entities=[driver], schema=[Field("conv_rate", Float32)],
                                             source=driver_stats_source, ttl=timedelta(days=1), online=False)
'''


def run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _stream_behind(bootstrap: str, topic: str, group: str) -> None:
    """Five events on ``topic``, of which ``group`` has committed two: the UI must show 3 behind."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    create_topic(bootstrap, topic, partitions=1)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(5):
        producer.send(topic, f'{{"driver_id": 1001, "event_timestamp": {i}}}'.encode(), partition=0)
        producer.flush()  # one record per batch: Tansu answers end offsets as the last batch's base offset + 1
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, None, -1)})
    consumer.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory,
         kafka_bootstrap: str) -> Iterator[tuple[ServeProcess, dict[str, str], Path]]:  # noqa: F811
    root = tmp_path_factory.mktemp("ui")
    repo = root / "repo"
    group = f"ui-ingester-{os.getpid()}"
    topic = f"ui-driver-stats-{os.getpid()}"
    env = {**os.environ, "PITSTOP_SERVING_MODEL_REFRESH_SECONDS": "0.2", "PITSTOP_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "PITSTOP_KAFKA_GROUP_ID": group}
    cli = [sys.executable, "-m", "pitstop.cli"]
    run([*cli, "init", str(repo)], env)
    sources = repo / "sources.py"
    sources.write_text(sources.read_text().replace('topic="driver_stats"', f'topic="{topic}"'))
    _stream_behind(kafka_bootstrap, topic, group)
    source_name = "driver_stats_source"
    assert source_name in (repo / "sources.py").read_text()
    (repo / "bulk_views.py").write_text(MANY_VIEWS)
    run([*cli, "-r", str(repo), "apply"], env)
    run([sys.executable, str(repo / "train.py")], env)  # trip_completion v1 @production
    run([sys.executable, str(repo / "train.py")], env)  # v2 @production
    run([*cli, "-r", str(repo), "models", "promote", "trip_completion", "1", "--alias", "production"], env)
    run([*cli, "-r", str(repo), "materialize-incremental"], env)
    keys = {}
    for name, scopes in {"admin": ["admin"], "reader": ["models:read", "features:read", "predict"],
                         "predictor": ["predict"]}.items():
        args = [a for s in scopes for a in ("--scope", s)]
        keys[name] = run([*cli, "-r", str(repo), "auth", "create-key", f"ui-{name}", *args, "-q"], env).strip()
    _bulk_versions(repo, 10_000)
    server = ServeProcess(repo, root, workers=1, env={**env, "PITSTOP_AUTH_ENABLED": "true",
                                                      "PITSTOP_MONITORING_LABELS_PATH": "data/labels.parquet"},
                          token=keys["admin"])
    with server:
        _traffic_and_drift(server, repo)
        yield server, keys, repo


def _bulk_versions(repo: Path, n: int) -> None:
    """10,000 versions of model "bulk" straight into the registry (records only: pages never load them)."""
    conn = sqlite3.connect(repo / "data" / "registry.db")
    now = datetime.now(UTC).isoformat()
    with conn:
        conn.executemany(
            "INSERT INTO model_versions (name, version, flavor, artifact_path, sha256, feature_service, signature, "
            "training_fingerprint, metrics, created_at, description, serving, dataset_id, origin) "
            "VALUES ('bulk', ?, 'pyfunc', 'bulk/' || ?, ?, NULL, '[]', NULL, ?, ?, '', '{}', NULL, '{}')",
            [(v, v, "0" * 64, f'{{"auc": {v / n:.4f}}}', now) for v in range(1, n + 1)])
    conn.close()


def _traffic_and_drift(server: ServeProcess, repo: Path) -> None:
    """Some /predict traffic, flushed to the log, then one monitoring run so the monitoring page has data."""
    import pandas as pd

    rows = pd.read_parquet(repo / "data" / "entity_rows.parquet").head(60)
    labels = []
    for start in range(0, len(rows), 20):
        part = rows.iloc[start:start + 20]
        status, body = server.request("POST", "/predict", {
            "model": "trip_completion", "entities": {"driver_id": part["driver_id"].tolist(),
                                                     "customer_id": part["customer_id"].tolist()},
            "request_data": {"trip_distance_km": part["trip_distance_km"].tolist()}})
        assert status == 200, body
        labels += [{"request_id": body["request_id"], "row": i, "label": int(done)}
                   for i, done in enumerate(part["trip_completed"])]
    pd.DataFrame(labels).to_parquet(repo / "data" / "labels.parquet")  # monitoring.labels_path (see the fixture)
    server.stop()  # SIGTERM flushes the prediction log
    from pitstop import FeatureStore

    with FeatureStore(repo) as store:
        for _ in range(3):  # a short history for the drift-over-time chart
            store.monitor.run_once(since="1h")
            time.sleep(1.1)
    server.start()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def base(server: ServeProcess) -> str:
    return f"http://127.0.0.1:{server.port}"


def sign_in(driver, server: ServeProcess, key: str) -> None:  # noqa: ANN001
    driver.delete_all_cookies()
    driver.get(base(server) + "/ui/login")
    driver.find_element(By.ID, "credential").send_keys(key)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/ui/login'] button"))


def click_and_wait(driver, element) -> None:  # noqa: ANN001
    """Click ``element`` and wait until the next page has loaded.

    A marker set on the current document disappears with it; the driver may answer errors while the
    browser is between documents, which only means "not yet".
    """
    driver.execute_script("window.__pitstopBefore = true;")
    element.click()
    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return window.__pitstopBefore === undefined && document.readyState === 'complete';"))


def shot(driver, name: str) -> None:  # noqa: ANN001
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


def load_seconds(driver) -> float:  # noqa: ANN001
    """The browser's own measure of the last navigation: request sent to load event finished."""
    return driver.execute_script("var n = performance.getEntriesByType('navigation')[0];"
                                 "return (n.loadEventEnd - n.startTime) / 1000;")


def text(driver) -> str:  # noqa: ANN001
    return driver.find_element(By.TAG_NAME, "main").text


def test_anonymous_is_sent_to_sign_in_and_a_bad_key_is_refused(site, browser) -> None:
    server, _, _ = site
    browser.delete_all_cookies()
    browser.get(base(server) + "/ui/models")
    assert browser.current_url.startswith(base(server) + "/ui/login")
    shot(browser, "login")
    sign_in(browser, server, "psk_not-a-real-key")
    assert "not valid" in text(browser)


def test_a_key_without_read_scopes_is_forbidden(site, browser) -> None:
    server, keys, _ = site
    sign_in(browser, server, keys["predictor"])
    browser.get(base(server) + "/ui/models")
    assert "Forbidden" in browser.title and "models:read" in browser.page_source


def test_overview_lineage_and_views(site, browser) -> None:
    server, keys, _ = site
    sign_in(browser, server, keys["reader"])
    assert browser.current_url == base(server) + "/ui"
    overview = text(browser)
    assert "1002 feature views" in overview.replace("\n", " ") or "feature views" in overview
    counts = {li.text.split("\n")[1]: li.text.split("\n")[0]
              for li in browser.find_elements(By.CSS_SELECTOR, ".counts li")}
    assert int(counts["feature views"]) >= 1000 and counts["models"] == "2"
    shot(browser, "overview")
    browser.get(base(server) + "/ui/lineage")
    nodes = browser.find_elements(By.CSS_SELECTOR, "svg.lineage a.node")
    labels = [n.get_attribute("data-node") for n in nodes]
    assert "service:driver_activity" in labels and "model:trip_completion:1" in labels
    assert "view:bulk_0001" not in labels and "1000 feature views no service uses" in text(browser)
    shot(browser, "lineage")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "a.node[data-node='service:driver_activity']"))
    assert browser.current_url.endswith("/ui/services/driver_activity")
    assert "trip_completion" in text(browser)
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "driver_hourly_stats"))
    assert browser.current_url.endswith("/ui/views/driver_hourly_stats")
    detail = text(browser)
    assert "conv_rate" in detail and "success" in detail and "materialized up to" in detail
    lag = browser.find_element(By.ID, "lag").text
    assert lag.startswith("3 messages not yet ingested"), lag
    shot(browser, "feature-view")
    browser.get(base(server) + "/ui/views?page=3")
    assert load_seconds(browser) < 1.0
    rows = browser.find_elements(By.CSS_SELECTOR, "main table tbody tr")
    assert len(rows) == 50 and "Page 3 of" in text(browser)


def test_ten_thousand_versions_page_fast(site, browser) -> None:
    server, keys, _ = site
    sign_in(browser, server, keys["reader"])
    browser.get(base(server) + "/ui/models/bulk?page=2")
    elapsed = load_seconds(browser)
    rows = browser.find_elements(By.CSS_SELECTOR, "main table tbody tr")
    assert len(rows) == 50 and rows[0].get_attribute("id") == "v9950"
    assert "Page 2 of 200 (10000 in all)" in text(browser)
    assert elapsed < 1.0, f"{elapsed:.2f} s"


def test_promotion_changes_the_served_version(site, browser) -> None:
    server, keys, _ = site
    body = {"model": "trip_completion", "entities": {"driver_id": [1001], "customer_id": [2001]},
            "request_data": {"trip_distance_km": [12.0]}}
    assert server.request("POST", "/predict", body)[1]["version"] == 1
    sign_in(browser, server, keys["reader"])  # a reader sees no promote control
    browser.get(base(server) + "/ui/models/trip_completion")
    assert not browser.find_elements(By.LINK_TEXT, "Make production")
    sign_in(browser, server, keys["admin"])
    browser.get(base(server) + "/ui/models/trip_completion")
    shot(browser, "model")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "a[href^='/ui/datasets/ds_']"))
    assert "driver_activity" in text(browser) or "conv_rate" in text(browser)
    assert "trip_completion v1" in text(browser) and "Files read" in text(browser)
    shot(browser, "dataset")
    browser.get(base(server) + "/ui/models/trip_completion")
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "Make production"))
    assert "version 1" in text(browser) and "version 2" in text(browser)
    shot(browser, "promote")
    click_and_wait(browser, browser.find_element(By.ID, "confirm"))
    assert "Alias moved to version 2" in text(browser)
    deadline = time.monotonic() + 10
    while server.request("POST", "/predict", body)[1]["version"] != 2:
        assert time.monotonic() < deadline, "the served version did not move"
        time.sleep(0.2)


def test_monitoring_page_draws_drift_charts(site, browser) -> None:
    server, keys, _ = site
    sign_in(browser, server, keys["reader"])
    browser.get(base(server) + "/ui/models/trip_completion/monitoring")
    assert browser.find_elements(By.CSS_SELECTOR, "#drift-chart canvas"), "uPlot drew no chart"
    latest = browser.find_element(By.ID, "latest").text
    assert "conv_rate" in latest
    performance = browser.find_element(By.ID, "performance").text
    assert "auc" in performance and "60" in performance  # 60 labelled predictions of version 1
    shot(browser, "monitoring")


def test_phone_width_and_keyboard(site, browser) -> None:
    server, keys, _ = site
    sign_in(browser, server, keys["reader"])
    browser.set_window_size(390, 844)
    try:
        browser.get(base(server) + "/ui/models")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400, f"the page is {width} px wide at a 390 px viewport"
        shot(browser, "phone-models")
        from selenium.webdriver.common.keys import Keys

        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        focused = browser.switch_to.active_element
        assert focused.text == "Skip to content"
    finally:
        browser.set_window_size(1280, 900)
