//! `das-setup report`: an audit summary of a window, as JSON and as one self-contained HTML page.
//!
//! The figures come from `query`'s table and engine (`query::local_session`: only the window's
//! objects are read), one SQL query each; the saved queries supply the lists, so the report and
//! `query --saved` always agree. The pipeline's health is `status`'s checks as they stand now.
//!
//! The page holds everything it shows: styles inline, charts as inline SVG drawn here (a bar per
//! hour or day, stacked by category; a bar per top user, host and application), no script and
//! no reference to anything outside it, so it opens offline and shows the same thing wherever it
//! is opened. Every text from the events is HTML-escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use das_processor::classify::Category;
use das_processor::route::UtcHour;
use serde_json::{Map, Value, json};

use crate::aws::Clients;
use crate::cli::{GlobalArgs, OutputFormat, ReportArgs};
use crate::query::{self, local::Location, saved};
use crate::replay::Window;
use crate::session::{self, Refusal, emit_json};
use crate::settings::target;

const HOUR_MILLIS: i64 = 3_600_000;
/// A window longer than this is charted by day, shorter by hour.
const HOURLY_UP_TO: i64 = 48;
/// How many users, hosts and applications are ranked.
const TOP: usize = 10;
/// The window `status` judges freshness and failures over, for the health section.
const HEALTH_WINDOW: Duration = Duration::from_secs(3600);

/// One ranked name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    pub name: String,
    pub events: u64,
}

/// The pipeline's health: `status`'s verdict and checks (name, level, detail).
#[derive(Debug, Clone)]
pub struct Health {
    pub state: String,
    pub checks: Vec<(String, String, String)>,
}

/// The report's figures.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: String,
    pub window: Window,
    pub location: Location,
    /// `hour` or `day`.
    pub unit: &'static str,
    /// Per bucket (`yyyy/MM/dd` or `yyyy/MM/dd/HH`), in order, every bucket of the window: the
    /// count per category.
    pub timeline: Vec<(String, BTreeMap<String, u64>)>,
    pub by_category: BTreeMap<String, u64>,
    pub top_users: Vec<Ranked>,
    pub top_hosts: Vec<Ranked>,
    pub top_applications: Vec<Ranked>,
    pub failed_logins: Vec<Map<String, Value>>,
    pub ddl: Vec<Map<String, Value>>,
    pub privilege_changes: Vec<Map<String, Value>>,
    /// `status`'s verdict and checks, or why they could not be read.
    pub health: Result<Health, String>,
    pub objects_read: usize,
    pub bytes_read: u64,
}

impl Report {
    pub fn total(&self) -> u64 {
        self.by_category.values().sum()
    }
}

pub async fn run(global: &GlobalArgs, args: &ReportArgs) -> u8 {
    let json_out = global.output == OutputFormat::Json;
    let report = match build(global, args).await {
        Ok(r) => r,
        Err((code, e)) => {
            crate::errln!("das-setup report: {e}");
            emit_json(
                json_out,
                &json!({"command": "report", "exitCode": code, "error": e}),
            );
            return code;
        }
    };
    if let Some(path) = &args.html
        && let Err(e) = std::fs::write(path, html(&report))
    {
        let e = format!("writing {}: {e}", path.display());
        crate::errln!("das-setup report: {e}");
        emit_json(
            json_out,
            &json!({"command": "report", "exitCode": query::EXIT_FAILED, "error": e}),
        );
        return query::EXIT_FAILED;
    }
    if json_out {
        let mut doc = to_json(&report);
        doc["html"] = json!(args.html.as_ref().map(|p| p.display().to_string()));
        emit_json(true, &doc);
    } else {
        crate::outln!("{}", to_text(&report));
        if let Some(path) = &args.html {
            crate::errln!("das-setup report: wrote {}", path.display());
        }
    }
    query::EXIT_ANSWERED
}

async fn build(global: &GlobalArgs, args: &ReportArgs) -> Result<Report, (u8, String)> {
    let refused = |e: Refusal| (session::EXIT_REFUSED, e.to_string());
    let target = target(&args.target).map_err(|e| refused(e.into()))?;
    let window = query::window(&args.since, args.until.as_deref()).map_err(refused)?;
    let clients = Clients::load(global).await;
    let location = query::location(
        &clients,
        &target,
        args.bucket.as_deref(),
        args.prefix.as_deref(),
    )
    .await
    .map_err(refused)?;
    let hours = query::local::Hours::of(window.since_millis, window.until_millis);
    let unit = if hours.len() > HOURLY_UP_TO {
        "day"
    } else {
        "hour"
    };
    let failed = |e: String| (query::EXIT_FAILED, e);
    let (ctx, stats) = query::local_session(&clients, &location, hours).map_err(failed)?;
    let rows = |sql: String| {
        let ctx = &ctx;
        async move {
            let frame = query::read_only(ctx, &sql).await?;
            let batches = frame.collect().await.map_err(|e| query::explain(&e))?;
            // Every column in every row, NULL as null (the JSON writer leaves NULLs out).
            let columns = query::columns(&batches);
            Ok::<_, String>(match query::json_rows(&batches) {
                Value::Array(rows) => rows
                    .into_iter()
                    .filter_map(|r| match r {
                        Value::Object(mut m) => Some(
                            columns
                                .iter()
                                .map(|c| (c.clone(), m.remove(c).unwrap_or(Value::Null)))
                                .collect::<Map<_, _>>(),
                        ),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            })
        }
    };
    // The hour or the day of each event: the partition value, or its first 10 characters.
    let bucket_expr = if unit == "day" {
        "substr(hour, 1, 10)"
    } else {
        "hour"
    };
    let counted = rows(format!(
        "SELECT {bucket_expr} AS at, category, count(*) AS n FROM events GROUP BY 1, 2"
    ))
    .await
    .map_err(failed)?;
    let mut per_bucket: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut by_category = BTreeMap::new();
    for r in &counted {
        let (Some(at), Some(category), Some(n)) = (
            r.get("at").and_then(Value::as_str),
            r.get("category").and_then(Value::as_str),
            r.get("n").and_then(Value::as_u64),
        ) else {
            continue;
        };
        *per_bucket
            .entry(at.to_owned())
            .or_default()
            .entry(category.to_owned())
            .or_default() += n;
        *by_category.entry(category.to_owned()).or_default() += n;
    }
    let timeline = buckets(&window, unit)
        .into_iter()
        .map(|b| {
            let counts = per_bucket.remove(&b).unwrap_or_default();
            (b, counts)
        })
        .collect();
    let top = |column: &str| {
        let rows = &rows;
        let column = column.to_owned();
        async move {
            let found = rows(format!(
                "SELECT {column} AS name, count(*) AS n FROM events WHERE {column} IS NOT NULL \
                 AND {column} <> '' GROUP BY 1 ORDER BY n DESC, name LIMIT {TOP}"
            ))
            .await?;
            Ok::<_, String>(
                found
                    .iter()
                    .filter_map(|r| {
                        Some(Ranked {
                            name: r.get("name")?.as_str()?.to_owned(),
                            events: r.get("n")?.as_u64()?,
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    let top_users = top("dbusername").await.map_err(failed)?;
    let top_hosts = top("remotehost").await.map_err(failed)?;
    let top_applications = top("clientapplication").await.map_err(failed)?;
    let listed = |name: &str| {
        let sql = saved::find(name).map(|s| s.sql).unwrap_or_default();
        format!("{sql} LIMIT {}", args.max_rows)
    };
    let failed_logins = rows(listed("failed-logins")).await.map_err(failed)?;
    let ddl = rows(listed("ddl")).await.map_err(failed)?;
    let privilege_changes = rows(listed("privilege-changes")).await.map_err(failed)?;
    let read = stats.snapshot();
    let health = health(&clients, &target).await;
    Ok(Report {
        target: format!("{} {}", session::kind_word(target.kind), target.id),
        window,
        location,
        unit,
        timeline,
        by_category,
        top_users,
        top_hosts,
        top_applications,
        failed_logins,
        ddl,
        privilege_changes,
        health,
        objects_read: read.objects,
        bytes_read: read.bytes,
    })
}

/// `status`'s checks now; an auditor without `status`'s read permissions gets the reason.
async fn health(clients: &Clients, target: &crate::naming::TargetRef) -> Result<Health, String> {
    let (identity, database) = session::resolve(clients, target)
        .await
        .map_err(|e| e.to_string())?;
    let (checks, deployed) =
        crate::status::checks(clients, target, &identity, database.as_ref(), HEALTH_WINDOW)
            .await
            .map_err(|e| e.to_string())?;
    let verdict = crate::status::verdict(&checks, deployed);
    Ok(Health {
        state: verdict.to_owned(),
        checks: checks
            .into_iter()
            .map(|c| (c.name.to_owned(), c.level.as_str().to_owned(), c.detail))
            .collect(),
    })
}

/// Every hour (or day) of the window, in order, as the partition names them.
fn buckets(window: &Window, unit: &str) -> Vec<String> {
    let first = window.since_millis - window.since_millis.rem_euclid(HOUR_MILLIS);
    let mut out: Vec<String> = Vec::new();
    let mut at = first;
    while at <= window.until_millis {
        let hour = UtcHour::from_epoch_millis(at).to_string();
        let name = if unit == "day" {
            hour.get(..10).unwrap_or(&hour).to_owned()
        } else {
            hour
        };
        if out.last() != Some(&name) {
            out.push(name);
        }
        at += HOUR_MILLIS;
    }
    out
}

fn ranked_json(list: &[Ranked]) -> Value {
    json!(
        list.iter()
            .map(|r| json!({"name": r.name, "events": r.events}))
            .collect::<Vec<_>>()
    )
}

pub fn to_json(r: &Report) -> Value {
    json!({
        "command": "report",
        "target": r.target,
        "bucket": r.location.bucket,
        "prefix": r.location.prefix,
        "window": {
            "since": query::millis_text(r.window.since_millis),
            "until": query::millis_text(r.window.until_millis),
        },
        "events": r.total(),
        "byCategory": r.by_category,
        "timeline": {
            "unit": r.unit,
            "buckets": r.timeline.iter().map(|(at, counts)| json!({"at": at, "counts": counts})).collect::<Vec<_>>(),
        },
        "topUsers": ranked_json(&r.top_users),
        "topHosts": ranked_json(&r.top_hosts),
        "topApplications": ranked_json(&r.top_applications),
        "failedLogins": r.failed_logins,
        "ddl": r.ddl,
        "privilegeChanges": r.privilege_changes,
        "health": match &r.health {
            Ok(Health { state, checks }) => json!({
                "state": state,
                "checks": checks.iter().map(|(c, s, d)| json!({"check": c, "status": s, "detail": d})).collect::<Vec<_>>(),
            }),
            Err(e) => json!({"state": "unknown", "error": e}),
        },
        "objectsRead": r.objects_read,
        "bytesRead": r.bytes_read,
        "exitCode": query::EXIT_ANSWERED,
    })
}

fn to_text(r: &Report) -> String {
    let mut out = format!(
        "das-setup report: {}, {} to {}: {} event(s)\n",
        r.target,
        query::millis_text(r.window.since_millis),
        query::millis_text(r.window.until_millis),
        r.total()
    );
    for (category, n) in &r.by_category {
        let _ = writeln!(out, "  {category:<13} {n}");
    }
    for (title, list) in [
        ("top users", &r.top_users),
        ("top hosts", &r.top_hosts),
        ("top applications", &r.top_applications),
    ] {
        let names: Vec<String> = list
            .iter()
            .map(|x| format!("{} ({})", x.name, x.events))
            .collect();
        let _ = writeln!(out, "{title}: {}", names.join(", "));
    }
    let _ = writeln!(
        out,
        "failed logins: {}, DDL: {}, privilege changes: {} (listed: --html or --output json)",
        r.by_category.get("AUTH_FAILURE").copied().unwrap_or(0),
        r.by_category.get("DDL").copied().unwrap_or(0),
        r.by_category.get("DCL").copied().unwrap_or(0)
    );
    let _ = write!(
        out,
        "pipeline: {}",
        match &r.health {
            Ok(h) => h.state.clone(),
            Err(e) => format!("unknown ({e})"),
        }
    );
    out
}

/// A category's colour in the charts (and its legend), fixed so reports compare at a glance.
pub fn colour(category: &str) -> &'static str {
    match category {
        "DDL" => "#d62728",
        "DML" => "#ff7f0e",
        "DQL" => "#1f77b4",
        "DCL" => "#9467bd",
        "TCL" => "#8c564b",
        "CONNECT" => "#2ca02c",
        "DISCONNECT" => "#98df8a",
        "AUTH_FAILURE" => "#e377c2",
        "ERROR" => "#7f7f7f",
        _ => "#bcbd22",
    }
}

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#222;max-width:1100px}\
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}\
.muted{color:#666}table{border-collapse:collapse;font-size:.85rem;width:100%}\
th,td{border:1px solid #ddd;padding:.25rem .45rem;text-align:left;vertical-align:top}th{background:#f4f4f4}\
td.sql{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}\
.legend span{display:inline-block;margin-right:1rem;font-size:.85rem}.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}\
.OK{color:#1a7f37}.WARN{color:#9a6700}.FAIL{color:#cf222e}.UNKNOWN{color:#666}\
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:8rem}.card b{display:block;font-size:1.4rem}";

/// The events per category over time: a stacked bar per bucket.
fn timeline_svg(r: &Report) -> String {
    let (width, height, left, bottom, top) = (1000.0_f64, 260.0_f64, 48.0, 40.0, 10.0);
    let plot_w = width - left - 10.0;
    let plot_h = height - bottom - top;
    let n = r.timeline.len().max(1) as f64;
    let max = r
        .timeline
        .iter()
        .map(|(_, c)| c.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.8).max(1.0);
    let mut svg = format!(
        "<svg class=\"chart\" id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"events per category per {}\">",
        r.unit
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#999\"/><line x1=\"{left}\" y1=\"{0}\" x2=\"{}\" y2=\"{0}\" stroke=\"#999\"/>",
        top + plot_h,
        left + plot_w
    );
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">0</text>",
        left - 4.0,
        top + 10.0,
        max as u64,
        left - 4.0,
        top + plot_h
    );
    for (i, (at, counts)) in r.timeline.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        for category in Category::ALL.iter().map(|c| c.as_str()) {
            let Some(&count) = counts.get(category) else {
                continue;
            };
            let h = plot_h * count as f64 / max;
            y -= h;
            let _ = write!(
                svg,
                "<rect class=\"bar\" data-category=\"{category}\" x=\"{x:.2}\" y=\"{y:.2}\" width=\"{bar:.2}\" height=\"{h:.2}\" fill=\"{}\"><title>{} {category}: {count}</title></rect>",
                colour(category),
                escape(at)
            );
        }
    }
    // A label at the first, middle and last bucket.
    let last = r.timeline.len().saturating_sub(1);
    let mut labelled = vec![0, last / 2, last];
    labelled.dedup();
    for i in labelled {
        if let Some((at, _)) = r.timeline.get(i) {
            // The first label starts at its bar, the last ends at its bar: inside the chart.
            let (x, anchor) = if i == 0 {
                (left + slot * i as f64, "start")
            } else if i == last {
                (left + slot * (i + 1) as f64, "end")
            } else {
                (left + slot * i as f64 + slot / 2.0, "middle")
            };
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"{anchor}\">{}</text>",
                top + plot_h + 16.0,
                escape(at)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A ranking as horizontal bars.
fn ranking_svg(id: &str, list: &[Ranked]) -> String {
    if list.is_empty() {
        return "<p class=\"muted\">none in the window</p>".to_owned();
    }
    let row = 22.0_f64;
    let (label_w, bar_w) = (260.0_f64, 420.0_f64);
    let height = row * list.len() as f64 + 4.0;
    let max = list.iter().map(|r| r.events).max().unwrap_or(1).max(1) as f64;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        label_w + bar_w + 80.0,
        label_w + bar_w + 80.0
    );
    for (i, r) in list.iter().enumerate() {
        let y = row * i as f64 + 2.0;
        let w = (bar_w * r.events as f64 / max).max(1.0);
        let name: String = r.name.chars().take(40).collect();
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text><rect class=\"bar\" x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"{:.1}\" fill=\"#4c78a8\"><title>{}: {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            label_w - 6.0,
            y + 14.0,
            escape(&name),
            row - 6.0,
            escape(&r.name),
            r.events,
            label_w + w + 6.0,
            y + 14.0,
            r.events
        );
    }
    svg.push_str("</svg>");
    svg
}

fn rows_table(rows: &[Map<String, Value>], total: u64) -> String {
    if rows.is_empty() {
        return "<p class=\"muted\">none in the window</p>".to_owned();
    }
    let columns: Vec<&String> = rows[0].keys().collect();
    let mut out = String::from("<table><tr>");
    for c in &columns {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr>");
    for r in rows {
        out.push_str("<tr>");
        for c in &columns {
            let text = match r.get(*c) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            };
            let class = if c.as_str() == "commandtext" {
                " class=\"sql\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(&text));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    if (rows.len() as u64) < total {
        let _ = write!(
            out,
            "<p class=\"muted\">the first {} of {total} (--max-rows)</p>",
            rows.len()
        );
    }
    out
}

/// The report as one self-contained HTML page.
pub fn html(r: &Report) -> String {
    let mut page = String::new();
    let since = query::millis_text(r.window.since_millis);
    let until = query::millis_text(r.window.until_millis);
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>das-setup audit report: {t}</title><style>{STYLE}</style></head><body>",
        t = escape(&r.target)
    );
    let _ = write!(
        page,
        "<h1>Audit report: {}</h1><p class=\"muted\">{} to {} (UTC) &middot; s3://{}/{} &middot; {} object(s), {} bytes read</p>",
        escape(&r.target),
        escape(&since),
        escape(&until),
        escape(&r.location.bucket),
        escape(&r.location.prefix),
        r.objects_read,
        r.bytes_read
    );
    let count = |c: &str| r.by_category.get(c).copied().unwrap_or(0);
    page.push_str("<div class=\"cards\">");
    for (label, n) in [
        ("events", r.total()),
        ("failed logins", count("AUTH_FAILURE")),
        ("DDL", count("DDL")),
        ("privilege changes", count("DCL")),
        ("errors", count("ERROR")),
    ] {
        let _ = write!(page, "<div class=\"card\"><b>{n}</b>{label}</div>");
    }
    page.push_str("</div>");
    let _ = write!(
        page,
        "<h2>Events per category, per {}</h2><div class=\"legend\">",
        r.unit
    );
    for category in Category::ALL.iter().map(|c| c.as_str()) {
        let _ = write!(
            page,
            "<span><i style=\"background:{}\"></i>{category} {}</span>",
            colour(category),
            count(category)
        );
    }
    page.push_str("</div>");
    page.push_str(&timeline_svg(r));
    for (title, id, list) in [
        ("Top users", "top-users", &r.top_users),
        ("Top client hosts", "top-hosts", &r.top_hosts),
        ("Top applications", "top-applications", &r.top_applications),
    ] {
        let _ = write!(page, "<h2>{title}</h2>{}", ranking_svg(id, list));
    }
    for (title, rows, total) in [
        ("Failed logins", &r.failed_logins, count("AUTH_FAILURE")),
        ("Schema changes (DDL)", &r.ddl, count("DDL")),
        ("Privilege changes", &r.privilege_changes, count("DCL")),
    ] {
        let _ = write!(page, "<h2>{title}</h2>{}", rows_table(rows, total));
    }
    page.push_str("<h2>Pipeline health (now, as das-setup status sees it)</h2>");
    match &r.health {
        Ok(Health { state, checks }) => {
            let _ = write!(
                page,
                "<p>{}</p><table><tr><th>check</th><th>status</th><th>detail</th></tr>",
                escape(state)
            );
            for (check, status, detail) in checks {
                let _ = write!(
                    page,
                    "<tr><td>{}</td><td class=\"{s}\">{s}</td><td>{}</td></tr>",
                    escape(check),
                    escape(detail),
                    s = escape(status)
                );
            }
            page.push_str("</table>");
        }
        Err(e) => {
            let _ = write!(
                page,
                "<p class=\"UNKNOWN\">unknown: {} (the report's reader may lack status's read permissions)</p>",
                escape(e)
            );
        }
    }
    let _ = write!(
        page,
        "<p class=\"muted\">das-setup {} report</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut counts = BTreeMap::new();
        counts.insert("DDL".to_owned(), 2);
        counts.insert("AUTH_FAILURE".to_owned(), 1);
        let mut row = Map::new();
        row.insert(
            "commandtext".into(),
            json!("drop table \"x\" -- <script>alert(1)</script>"),
        );
        Report {
            target: "cluster demo".into(),
            window: Window {
                since_millis: 0,
                until_millis: 3 * HOUR_MILLIS,
            },
            location: Location {
                bucket: "b".into(),
                prefix: "parsed/demo/".into(),
            },
            unit: "hour",
            timeline: vec![
                ("1970/01/01/00".into(), counts.clone()),
                ("1970/01/01/01".into(), BTreeMap::new()),
            ],
            by_category: counts,
            top_users: vec![Ranked {
                name: "<mallory>".into(),
                events: 3,
            }],
            top_hosts: vec![],
            top_applications: vec![],
            failed_logins: vec![],
            ddl: vec![row],
            privilege_changes: vec![],
            health: Err("no permission".into()),
            objects_read: 1,
            bytes_read: 10,
        }
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_what_the_events_say() {
        let page = html(&report());
        assert!(!page.contains("<script"), "no script, and none injected");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&lt;mallory&gt;"));
        for outside in ["http://", "https://", "src=", "url("] {
            let external = page
                .match_indices(outside)
                .filter(|(i, _)| !page[..*i].ends_with("xmlns=\""))
                .count();
            assert_eq!(external, 0, "{outside} in the page");
        }
        // One bar per category present in a bucket, coloured by category.
        assert_eq!(page.matches("data-category=\"DDL\"").count(), 1);
        assert!(page.contains(&format!("fill=\"{}\"", colour("AUTH_FAILURE"))));
        assert!(page.contains("unknown: no permission"));
    }

    #[test]
    fn buckets_cover_the_window_by_hour_or_by_day() {
        let w = Window {
            since_millis: HOUR_MILLIS / 2,
            until_millis: 50 * HOUR_MILLIS,
        };
        let hours = buckets(&w, "hour");
        assert_eq!(hours.first().map(String::as_str), Some("1970/01/01/00"));
        assert_eq!(hours.len(), 51);
        assert_eq!(
            buckets(&w, "day"),
            ["1970/01/01", "1970/01/02", "1970/01/03"]
        );
        let r = report();
        assert_eq!(r.total(), 3);
        let doc = to_json(&r);
        assert_eq!(doc["timeline"]["buckets"][0]["counts"]["DDL"], 2);
        assert_eq!(doc["health"]["state"], "unknown");
        assert!(to_text(&r).contains("failed logins: 1, DDL: 2"));
    }
}
