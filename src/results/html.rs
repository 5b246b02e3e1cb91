//! The static HTML report: one self-contained page (charts inlined as SVG,
//! no scripts, no network) per run (`report.html` in its store directory)
//! and for the whole matrix (`maelstrom-results/index.html`).

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::plot;
use super::run::Run;
use super::summary::{Summary, Verdict, WITNESS_KEYS};
use super::table::{self, Table};

/// Longest witness shown in full; longer ones are cut (the run directory
/// has everything).
const MAX_WITNESS_CHARS: usize = 8000;

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2.5em; border-top: 1px solid #ccc; padding-top: 1em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
.num { text-align: right; }
.verdict { font-weight: bold; padding: 2px 8px; border-radius: 4px; white-space: nowrap; }
.valid { background: #d4f4d2; color: #14591a; } .invalid, .crashed { background: #f9d0cc; color: #8a1410; }
.unknown, .missed { background: #fde9bd; color: #7a4b00; }
figure.chart { margin: 1em 0; } figure.chart svg { max-width: 100%; height: auto; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.note { color: #666; font-size: 0.9em; }
";

/// HTML-escapes text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// The CSS class and text of a run's verdict badge.
fn verdict_badge(s: &Summary) -> String {
    let class = match s.verdict {
        Verdict::Valid if !s.challenge_targets_met() => "missed",
        v => v.as_str(),
    };
    format!(
        "<span class=\"verdict {class}\">{}</span>",
        escape(&table::verdict_text(s))
    )
}

fn table_html(t: &Table, verdict_column: Option<usize>) -> String {
    let class = |i: usize| {
        if t.right.get(i).copied().unwrap_or(false) {
            " class=\"num\""
        } else {
            ""
        }
    };
    let mut out = String::from("<table>\n<tr>");
    for (i, h) in t.headers.iter().enumerate() {
        let _ = write!(out, "<th{}>{}</th>", class(i), escape(h));
    }
    out.push_str("</tr>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            if Some(i) == verdict_column {
                let class = cell.split(',').next().unwrap_or("").replace(' ', "-");
                let _ = write!(
                    out,
                    "<td><span class=\"verdict {class}\">{}</span></td>",
                    escape(cell)
                );
            } else {
                let _ = write!(out, "<td{}>{}</td>", class(i), escape(cell));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

fn heading(s: &Summary) -> String {
    let name = match (&s.challenge, &s.title) {
        (Some(id), Some(title)) => format!("{id}: {title}"),
        _ => s.workload.clone().unwrap_or_else(|| "run".into()),
    };
    format!("{name} — nemesis {}", s.nemesis)
}

/// A run's section: what ran, the verdict, figures, targets, messages,
/// charts and anomalies.
pub fn run_section(s: &Summary, run: Option<&Run>, link: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<section class=\"run\">\n<h2>{} {}</h2>",
        escape(&heading(s)),
        verdict_badge(s)
    );
    let _ = writeln!(
        out,
        "<p>Runner: <b>{}</b>{}. Seed {}. Started {}.{}</p>",
        escape(&s.runner_version),
        if s.quick {
            " (quick run: short time limit, figures indicative only)"
        } else {
            ""
        },
        s.seed.map_or("not recorded".into(), |v| v.to_string()),
        escape(s.started.as_deref().unwrap_or("-")),
        link.map_or(String::new(), |l| format!(
            " <a href=\"{}\">Run report</a>",
            escape(l)
        ))
    );
    if !s.flags.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"note\">Flags: <code>{}</code></p>",
            escape(&s.flags.join(" "))
        );
    }
    out.push_str(&table_html(
        &table::comparison(&[("this run".into(), s.clone())]),
        None,
    ));
    out.push_str(&targets_html(s));
    if let Some(run) = run {
        out.push_str(&messages_html(&run.results));
        out.push_str(&charts_html(run));
        out.push_str(&anomalies_html(&run.results["workload"]));
    } else {
        out.push_str("<p class=\"note\">The run's directory is not on this machine, so there are no charts.</p>\n");
    }
    out.push_str("</section>\n");
    out
}

fn targets_html(s: &Summary) -> String {
    if s.targets.is_empty() {
        return String::new();
    }
    let mut t = Table::new(&[
        ("target", false),
        ("bound", true),
        ("value", true),
        ("met", true),
        ("set by", true),
    ]);
    for target in &s.targets {
        t.push(vec![
            target.metric.clone(),
            target.bound.clone(),
            table::fixed(target.value, 3),
            match target.met {
                Some(true) => "met".into(),
                Some(false) => "MISSED".into(),
                None => "not reported".into(),
            },
            target.source.clone(),
        ]);
    }
    format!("<h3>Targets</h3>\n{}", table_html(&t, None))
}

fn messages_html(results: &Value) -> String {
    let net = &results["net"];
    if net.is_null() {
        return String::new();
    }
    let mut t = Table::new(&[
        ("messages", false),
        ("sent", true),
        ("received", true),
        ("distinct", true),
        ("per operation", true),
    ]);
    for part in ["servers", "clients", "all"] {
        let n = &net[part];
        t.push(vec![
            part.into(),
            table::count(n["send-count"].as_u64()),
            table::count(n["recv-count"].as_u64()),
            table::count(n["msg-count"].as_u64()),
            table::fixed(n["msgs-per-op"].as_f64(), 2),
        ]);
    }
    format!("<h3>Messages</h3>\n{}", table_html(&t, None))
}

fn charts_html(run: &Run) -> String {
    let Some(history) = &run.history else {
        return "<p class=\"note\">No history file, so no charts.</p>\n".into();
    };
    let mut out = String::from("<h3>Latency and rate</h3>\n");
    for chart in [plot::latency_svg(history), plot::rate_svg(history)] {
        match chart {
            Ok(svg) => {
                let _ = writeln!(out, "<figure class=\"chart\">{svg}</figure>");
            }
            Err(e) => {
                let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(&e.to_string()));
            }
        }
    }
    for fault in &plot::FAULTS {
        let periods = plot::fault_periods(history, fault);
        if periods.is_empty() {
            continue;
        }
        let spans: Vec<String> = periods
            .iter()
            .map(|(a, b)| format!("{a:.1}–{b:.1} s"))
            .collect();
        let mut label = fault.label.to_string();
        label[..1].make_ascii_uppercase();
        let _ = writeln!(
            out,
            "<p class=\"note\">{label} (shaded): {}</p>",
            spans.join(", ")
        );
    }
    out
}

fn anomalies_html(workload: &Value) -> String {
    let mut out = String::from("<h3>Checker findings</h3>\n");
    let found = super::summary::anomalies(workload);
    if found.is_empty() {
        out.push_str("<p>No anomalies.</p>\n");
    } else {
        let _ = writeln!(
            out,
            "<p>Anomalies: <b>{}</b></p>",
            escape(&found.join(", "))
        );
    }
    for key in witness_keys(workload) {
        let text = serde_json::to_string_pretty(&workload[key.as_str()]).unwrap_or_default();
        let _ = writeln!(
            out,
            "<details open><summary>{} (witnesses)</summary><pre>{}</pre></details>",
            escape(&key),
            escape(&truncate(&text))
        );
    }
    let whole = serde_json::to_string_pretty(workload).unwrap_or_default();
    let _ = writeln!(
        out,
        "<details><summary>The workload checker's whole report</summary><pre>{}</pre></details>",
        escape(&truncate(&whole))
    );
    out
}

/// Keys of the workload report holding non-empty witnesses, including
/// each of kafka's bad error types (reported under their own name).
fn witness_keys(workload: &Value) -> Vec<String> {
    let bad_types = workload["bad-error-types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(String::from));
    WITNESS_KEYS
        .iter()
        .map(|k| k.to_string())
        .chain(bad_types)
        .filter(|k| is_present(&workload[k.as_str()]))
        .collect()
}

fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_WITNESS_CHARS) {
        Some((cut, _)) => format!(
            "{}\n… (cut; see the run directory for the rest)",
            &text[..cut]
        ),
        None => text.to_string(),
    }
}

/// A run's own page.
pub fn run_page(s: &Summary, run: &Run) -> String {
    let title = format!("{} ({})", heading(s), s.runner);
    page(&title, &run_section(s, Some(run), None))
}

/// The matrix page: the table of every run, then each run's section.
/// `runs[i]` is `summaries[i]`'s data when its directory is here.
pub fn index_page(summaries: &[Summary], runs: &[Option<Run>], index_dir: &Path) -> String {
    let mut body = String::from("<h1>Gossip Glomers: challenge results</h1>\n");
    body.push_str(
        "<p>Every run's verdict and figures, labelled with the runner that produced them \
         (<b>maelstrom</b>: real Maelstrom; <b>glomers</b>: our runner with the node binaries; \
         <b>glomers-sim</b>: our simulator). Regenerate with <code>make report</code>.</p>\n",
    );
    let mut matrix = table::matrix();
    for s in summaries {
        matrix.push(table::matrix_row(s));
    }
    body.push_str(&table_html(&matrix, Some(3)));
    for (s, run) in summaries.iter().zip(runs) {
        let link = run
            .as_ref()
            .and_then(|r| r.dir.as_ref())
            .filter(|d| d.join("report.html").is_file())
            .map(|d| relative(index_dir, &d.join("report.html")));
        body.push_str(&run_section(s, run.as_ref(), link.as_deref()));
    }
    page("Gossip Glomers: challenge results", &body)
}

/// `to` as a path relative to the directory `from` (both made absolute).
pub fn relative(from: &Path, to: &Path) -> String {
    let absolute = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let (from, to) = (absolute(from), absolute(to));
    let from: Vec<Component> = from.components().collect();
    let to_parts: Vec<Component> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for part in &to_parts[common..] {
        path.push(part);
    }
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_to_the_common_parent() {
        assert_eq!(
            relative(
                Path::new("/a/results"),
                Path::new("/a/store/echo/1/report.html")
            ),
            "../store/echo/1/report.html"
        );
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }

    #[test]
    fn witnesses_include_kafka_error_types() {
        let workload = serde_json::json!({
            "bad-error-types": ["lost-write"],
            "lost-write": {"count": 1},
            "errors": [],
            "lost": [7]
        });
        assert_eq!(witness_keys(&workload), ["lost", "lost-write"]);
    }
}
