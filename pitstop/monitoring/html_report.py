"""A drift report as one self-contained HTML page: the summary table and a distribution plot per feature (inline SVG)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from pitstop.monitoring.drift import DriftReport, FeatureDrift

__all__ = ["drift_html"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24;max-width:1100px}
table{border-collapse:collapse;margin:1rem 0}td,th{padding:.3rem .7rem;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}.drift{color:#b3261e;font-weight:600}.ok{color:#2e7d32}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:1rem}
figure{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:.5rem}figcaption{font-size:.9rem;margin-bottom:.3rem}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 .8rem;vertical-align:middle}
small{color:#666}
"""
_REF, _CUR = "#7a8ca5", "#e0803a"


def _bars(feature: FeatureDrift, width: int = 320, height: int = 140) -> str:
    hist = feature.histogram
    ref, cur = hist.get("reference") or [], hist.get("current") or []
    if not ref:
        return "<small>no data to plot</small>"
    n = len(ref)
    top = max(max(ref), max(cur), 1e-12)
    slot = width / n
    bar = max(1.0, slot / 2 - 1)
    parts = [f'<svg width="{width}" height="{height + 30}" role="img" aria-label="distribution of {escape(feature.feature)}">']
    for i, (r, c) in enumerate(zip(ref, cur, strict=True)):
        x = i * slot
        for offset, share, colour in ((0.0, r, _REF), (bar, c, _CUR)):
            h = height * share / top
            parts.append(f'<rect x="{x + offset:.1f}" y="{height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{share:.2%}</title></rect>')
    if "labels" in hist:
        for i, label in enumerate(hist["labels"][:n]):
            parts.append(f'<text x="{i * slot + 1:.1f}" y="{height + 12}" font-size="9">{escape(str(label))[:8]}</text>')
    else:
        edges = hist.get("edges", [])
        if edges:
            parts.append(f'<text x="0" y="{height + 12}" font-size="9">{edges[0]:.3g}</text>')
            parts.append(f'<text x="{width}" y="{height + 12}" font-size="9" text-anchor="end">{edges[-1]:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def drift_html(report: DriftReport, title: str) -> str:
    """The page for ``report`` (no external assets: one file to attach or archive)."""
    rows = []
    for f in report.features:
        verdict = '<span class="drift">drift</span>' if f.drifted else '<span class="ok">ok</span>'
        psi = "" if f.psi is None else f"{f.psi:.3f}"
        rows.append(f"<tr><td>{escape(f.feature)}</td><td>{f.kind}</td><td>{f.test}</td><td>{f.statistic:.4g}</td>"
                    f"<td>{f.p_adjusted:.3g}</td><td>{f.effect:.3f}</td><td>{psi}</td>"
                    f"<td>{f.null_share_reference:.1%} → {f.null_share_current:.1%}</td><td>{verdict}</td></tr>")
    mv = report.multivariate
    mv_line = ("" if mv is None else
               f"<p>Multivariate (MMD over {len(mv.features)} numeric features, {mv.reference_rows} vs {mv.current_rows} "
               f"sampled rows): MMD² {mv.statistic:.4g}, p {mv.p_value:.3g} — "
               f"{'<span class=drift>drift</span>' if mv.drifted else '<span class=ok>no drift</span>'}</p>")
    figures = "".join(
        f'<figure><figcaption><b>{escape(f.feature)}</b> {"<span class=drift>drift</span>" if f.drifted else ""}'
        f"<br><small>effect {f.effect:.3f}, p {f.p_adjusted:.3g}</small></figcaption>{_bars(f)}</figure>"
        for f in report.features)
    flagged = ", ".join(escape(d) for d in report.drifted) or "nothing"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<p>{report.current_rows:,} logged rows against a reference of {report.reference_rows:,} rows.
Flagged: <b>{flagged}</b>. A feature is flagged when its p-value after the {escape(report.correction)} correction is
below {report.alpha} <i>and</i> its effect reaches the threshold ({report.numeric_threshold} reference standard
deviations of Wasserstein distance for numbers, {report.categorical_threshold} Jensen-Shannon distance for
categories). <small>Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by pitstop.</small></p>
<table><thead><tr><th>feature</th><th>kind</th><th>test</th><th>statistic</th><th>p (corrected)</th><th>effect</th>
<th>PSI</th><th>nulls ref → now</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>
{mv_line}
<p class="legend"><span style="background:{_REF}"></span>reference <span style="background:{_CUR}"></span>current window</p>
<div class="plots">{figures}</div>
</body></html>
"""
