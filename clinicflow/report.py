"""`clinicflow report OUT.html`: outcomes and operations as one self-contained HTML page (inline SVG, no scripts)."""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from core.settings import Settings
from warehouse.analytics import open_analytics
from warehouse.db import Lake, records

COLORS = {"esketamine_nasal": "#2f6db5", "racemic_iv": "#d9822b"}
PALETTE = ["#2f6db5", "#d9822b", "#3a9e5c", "#b83b5e", "#7a5cc2", "#8a8a8a"]
LABEL = {"esketamine_nasal": "Esketamine (nasal)", "racemic_iv": "Racemic ketamine (IV)"}


def _e(v) -> str:
    return html.escape(str(v))


def line_chart(
    series: dict[str, list[tuple[float, float]]], title: str, xlabel: str, ylabel: str, w: int = 560, h: int = 260
) -> str:
    """Lines over shared axes; series: name -> [(x, y)]."""
    pts = [p for s in series.values() for p in s]
    if not pts:
        return f"<p>No data for {_e(title)} yet.</p>"
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts) or 1
    y1 = max(max(p[1] for p in pts), 1)
    px = lambda x: 50 + (x - x0) / ((x1 - x0) or 1) * (w - 70)  # noqa: E731
    py = lambda y: h - 35 - y / y1 * (h - 60)  # noqa: E731
    body = [
        f'<line x1="50" y1="{h - 35}" x2="{w - 20}" y2="{h - 35}" stroke="#999"/>',
        f'<line x1="50" y1="25" x2="50" y2="{h - 35}" stroke="#999"/>',
        f'<text x="{w / 2}" y="{h - 5}" text-anchor="middle">{_e(xlabel)}</text>',
        f'<text x="12" y="{h / 2}" transform="rotate(-90 12 {h / 2})" text-anchor="middle">{_e(ylabel)}</text>',
        f'<text x="46" y="{py(y1) + 4}" text-anchor="end">{y1:g}</text>',
        f'<text x="46" y="{h - 31}" text-anchor="end">0</text>',
        f'<text x="50" y="{h - 20}">{x0:g}</text><text x="{w - 20}" y="{h - 20}" text-anchor="end">{x1:g}</text>',
    ]
    for i, (name, s) in enumerate(series.items()):
        color = COLORS.get(name, PALETTE[i % len(PALETTE)])
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(s))
        body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        body.append(
            f'<text x="{w - 25}" y="{30 + 16 * i}" text-anchor="end" fill="{color}">{_e(LABEL.get(name, name))}</text>'
        )
    return f'<svg role="img" aria-label="{_e(title)}" width="{w}" height="{h}" font-size="11">{"".join(body)}</svg>'


def bar_chart(bars: list[tuple[str, float, str]], title: str, fmt=lambda v: f"{v:g}", w: int = 560) -> str:
    """Horizontal bars: (label, value, color)."""
    if not bars:
        return f"<p>No data for {_e(title)} yet.</p>"
    top = max(v for _, v, _ in bars) or 1
    h = 24 * len(bars) + 10
    rows = []
    for i, (label, value, color) in enumerate(bars):
        y = 5 + 24 * i
        rows.append(
            f'<text x="0" y="{y + 14}">{_e(label)}</text>'
            f'<rect x="190" y="{y}" width="{value / top * (w - 260):.1f}" height="18" fill="{color}"/>'
            f'<text x="{195 + value / top * (w - 260):.1f}" y="{y + 14}">{_e(fmt(value))}</text>'
        )
    return f'<svg role="img" aria-label="{_e(title)}" width="{w}" height="{h}" font-size="11">{"".join(rows)}</svg>'


def quarantine_chart(rows: list[dict]) -> str:
    """A trend line per error kind over days; bars when there are too few days for a line."""
    days = sorted({r["day"] for r in rows})
    if len(days) < 3:
        return bar_chart(
            [(f"{r['day']} {r['error_kind']}", r["messages"], PALETTE[i % len(PALETTE)]) for i, r in enumerate(rows)],
            "quarantine by day",
        )
    series: dict[str, list] = defaultdict(list)
    for r in rows:
        series[r["error_kind"]].append((days.index(r["day"]), r["messages"]))
    return line_chart(dict(series), "quarantine trend", f"days since {days[0]}", "messages")


STAGES = (
    ("completed", "#3a9e5c"),
    ("dispatched", "#2f6db5"),
    ("still_open", "#c9c9c9"),
    ("expired", "#d9822b"),
    ("blocked", "#b83b5e"),
    ("cancelled", "#8a8a8a"),
)


def stacked_funnel(rows: list[dict], w: int = 560) -> str:
    """One stacked bar per check-in kind: what became of the planned tasks."""
    if not rows:
        return "<p>No follow-up tasks yet.</p>"
    order = {"checkin_day1": 0, "checkin_month1": 1, "checkin_month3": 2, "checkin_month6": 3, "checkin_month12": 4}
    rows = sorted(rows, key=lambda r: order.get(r["kind"], 9))
    top = max(r["planned"] for r in rows) or 1
    parts = []
    for i, r in enumerate(rows):
        y, x = 5 + 26 * i, 130.0
        parts.append(f'<text x="0" y="{y + 14}">{_e(r["kind"])} ({r["planned"]})</text>')
        for stage, color in STAGES:
            n = r[stage] if stage != "dispatched" else r["dispatched"] - r["completed"] - r["expired"]
            width = max(n, 0) / top * (w - 140)
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="18" fill="{color}">'
                f"<title>{stage}: {n}</title></rect>"
            )
            x += width
    legend = " ".join(f'<span style="color:{c}">&#9632; {s.replace("_", " ")}</span>' for s, c in STAGES)
    svg = f'<svg role="img" aria-label="outreach funnel" width="{w}" height="{26 * len(rows) + 10}" font-size="11">'
    return svg + "".join(parts) + f"</svg><div>{legend}</div>"


def gather(conn) -> dict:
    return {
        "outcomes": records(conn, "FROM outcomes_by_modality ORDER BY modality"),
        "trajectory": records(
            conn,
            "SELECT * FROM phq9_trajectory WHERE weeks_since_first_session BETWEEN -2 AND 52 "
            "AND patients >= 3 ORDER BY modality, weeks_since_first_session",
        ),
        "funnel": records(conn, "FROM outreach_funnel ORDER BY kind"),
        "quarantine": records(conn, "SELECT day, error_kind, messages FROM quarantine_daily ORDER BY day"),
        "alerts": records(
            conn,
            "SELECT reason, severity, count(*) AS n FROM alerts WHERE status = 'open' GROUP BY ALL ORDER BY n DESC",
        ),
        "acknowledgement": records(
            conn,
            """SELECT severity, count(*) AS episodes,
                      round(median(minutes_to_acknowledge), 1) AS median_minutes,
                      round(quantile_cont(minutes_to_acknowledge, 0.9), 1) AS p90_minutes,
                      round(avg((escalation_level > 0)::INT), 3) AS share_escalated
               FROM alert_episodes WHERE status <> 'withdrawn'
               GROUP BY severity ORDER BY list_position(['urgent', 'high', 'routine'], severity)""",
        ),
        "open_by_age": records(
            conn,
            """SELECT severity, count(*) FILTER (WHERE age < INTERVAL 1 HOUR) AS under_1h,
                      count(*) FILTER (WHERE age >= INTERVAL 1 HOUR AND age < INTERVAL 1 DAY) AS h1_to_24h,
                      count(*) FILTER (WHERE age >= INTERVAL 1 DAY AND age < INTERVAL 7 DAY) AS d1_to_7d,
                      count(*) FILTER (WHERE age >= INTERVAL 7 DAY) AS over_7d
               FROM (SELECT severity, now() - opened_at AS age FROM alert_episodes
                     WHERE status IN ('open', 'acknowledged'))
               GROUP BY severity ORDER BY list_position(['urgent', 'high', 'routine'], severity)""",
        ),
        "rems": records(
            conn,
            "SELECT count(*) AS sessions, avg(monitoring_ok::INT) AS monitoring_ok, "
            "avg(form_on_time::INT) AS forms_on_time FROM rems_compliance",
        ),
        "quality": records(conn, "FROM data_quality ORDER BY suite"),
        "info": records(conn, "FROM snapshot_info")[0],
    }


def quality_table(rows: list[dict]) -> str:
    """The latest data-quality result per suite: GX's Data Docs need CDN assets, this page needs none."""
    if not rows:
        return '<p class="muted">No data-quality run yet: `clinicflow` runs it hourly (the data-quality flow).</p>'
    body = "".join(
        f'<tr><td>{_e(r["suite"])}</td><td id="dq-{_e(r["suite"])}">{"pass" if r["success"] else "FAIL"}</td>'
        f"<td>{_e(r['checked_at'])}</td><td>{r['rows_checked']}</td><td>"
        + _e(
            "; ".join(
                f"{f['expectation']} on {f['column']}: {f['unexpected_count']} rows"
                for f in (r["failed_expectations"] or [])
            )
            or "none"
        )
        + "</td></tr>"
        for r in rows
    )
    return (
        "<table><tr><th>suite</th><th>result</th><th>checked</th><th>rows</th><th>failed expectations</th></tr>"
        f"{body}</table>"
    )


def _minutes(value) -> str:
    return "-" if value is None else f"{value:,.1f} min"


def render(d: dict) -> str:
    cards = "".join(
        f'<div class="card"><div class="big" id="response-rate-{_e(o["modality"])}">'
        f"{(o['response_rate'] or 0) * 100:.1f}%</div><div>{_e(LABEL.get(o['modality'], o['modality']))} response"
        f" ({o['responders']} of {o['patients_with_baseline']}); remission "
        f'<span id="remission-rate-{_e(o["modality"])}">{(o["remission_rate"] or 0) * 100:.1f}%</span></div></div>'
        for o in d["outcomes"]
    )
    traj: dict[str, list] = defaultdict(list)
    for r in d["trajectory"]:
        traj[r["modality"]].append((r["weeks_since_first_session"], float(r["mean_total"])))
    funnel = stacked_funnel(d["funnel"])
    rems = d["rems"][0] if d["rems"] else {}
    alerts = "".join(
        f"<tr><td>{_e(a['reason'])}</td><td>{_e(a['severity'])}</td><td>{a['n']}</td></tr>" for a in d["alerts"]
    )
    acks = "".join(
        f"<tr><td>{_e(r['severity'])}</td><td>{r['episodes']}</td><td>{_minutes(r['median_minutes'])}</td>"
        f"<td>{_minutes(r['p90_minutes'])}</td><td>{(r['share_escalated'] or 0) * 100:.1f}%</td></tr>"
        for r in d["acknowledgement"]
    )
    ages = "".join(
        f"<tr><td>{_e(r['severity'])}</td><td>{r['under_1h']}</td><td>{r['h1_to_24h']}</td><td>{r['d1_to_7d']}</td>"
        f"<td>{r['over_7d']}</td></tr>"
        for r in d["open_by_age"]
    )
    rates = [
        (LABEL.get(o["modality"], o["modality"]), (o["response_rate"] or 0) * 100, COLORS.get(o["modality"], "#888"))
        for o in d["outcomes"]
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clinicflow report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}}
.cards{{display:flex;gap:1em;flex-wrap:wrap}}
.card{{border:1px solid #ddd;border-radius:8px;padding:1em;min-width:260px}}
.big{{font-size:2.4em;font-weight:600}}section{{margin-top:2em}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #eee;padding:4px 10px;text-align:left}}.muted{{color:#777}}</style></head>
<body><h1>How are our patients doing?</h1>
<p class="muted">Snapshot published {_e(d["info"]["published_at"])}; data as of {_e(d["info"]["data_as_of"])}.
Response: latest PHQ-9 at most half of a baseline of 10 or more. Remission: latest PHQ-9 below 5.
The clinic advertises 70% improvement; these are its own figures.</p>
<div class="cards">{cards}</div>
<section><h2>Response rate by modality (%)</h2>{bar_chart(rates, "response rates", lambda v: f"{v:.1f}%")}</section>
<section><h2>PHQ-9 by weeks since first session (mean)</h2>
{line_chart(dict(traj), "PHQ-9 trajectories", "weeks since first session", "mean PHQ-9")}</section>
<section><h2>Outreach funnel</h2>{funnel}</section>
<section><h2>REMS compliance</h2><p>{rems.get("sessions", 0)} esketamine sessions;
monitoring of 120 minutes or more: <b id="rems-monitoring-ok">{(rems.get("monitoring_ok") or 0) * 100:.1f}%</b>;
forms filed within 7 days: <b id="rems-forms-on-time">{(rems.get("forms_on_time") or 0) * 100:.1f}%</b>.</p></section>
<section><h2>Alert episodes: time to acknowledge</h2><table><tr><th>severity</th><th>episodes</th>
<th>median</th><th>90th percentile</th><th>escalated</th></tr>{acks}</table>
<p class="muted">Minutes from the pipeline raising an episode's first alert to the first acknowledgement
(a resolution acknowledges too); unanswered episodes are not in the times.</p></section>
<section><h2>Open episodes by age</h2><table><tr><th>severity</th><th>under 1 h</th><th>1 to 24 h</th>
<th>1 to 7 days</th><th>over 7 days</th></tr>{ages}</table></section>
<section><h2>Open alerts</h2><table><tr><th>reason</th><th>severity</th><th>open</th></tr>{alerts}</table></section>
<section><h2>Quarantined messages per day</h2>{quarantine_chart(d["quarantine"])}</section>
<section><h2>Data quality</h2>{quality_table(d["quality"])}</section>
<p class="muted">Generated {datetime.now(timezone.utc).isoformat(timespec="seconds")} by clinicflow from the
pseudonymous analytics snapshot.</p></body></html>
"""


def write_report(settings: Settings, out: Path) -> Path:
    conn = open_analytics(Lake.analysts(settings))
    try:
        data = gather(conn)
    finally:
        conn.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data), encoding="utf-8")
    return out
