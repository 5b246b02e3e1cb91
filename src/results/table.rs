//! Tables of runs, for the terminal and as markdown: the matrix (one line
//! per run) and the comparison (one column per run).

use super::summary::{Summary, Verdict};

/// A table of text cells; numeric columns are right-aligned.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Per column: right-align (numbers).
    pub right: Vec<bool>,
}

impl Table {
    pub fn new(headers: &[(&str, bool)]) -> Table {
        Table {
            headers: headers.iter().map(|(h, _)| h.to_string()).collect(),
            rows: Vec::new(),
            right: headers.iter().map(|(_, r)| *r).collect(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    }

    fn line(&self, cells: &[String], widths: &[usize], sep: &str) -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if self.right.get(i).copied().unwrap_or(false) {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        padded.join(sep)
    }

    /// Aligned columns with a rule under the header.
    pub fn terminal(&self) -> String {
        let widths = self.widths();
        let mut out = self
            .line(&self.headers, &widths, "  ")
            .trim_end()
            .to_string();
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&rule.join("  "));
        out.push('\n');
        for row in &self.rows {
            out.push_str(self.line(row, &widths, "  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured markdown table.
    pub fn markdown(&self) -> String {
        let widths = self.widths();
        let cell = |c: &str| c.replace('|', "\\|");
        let escape = |cells: &[String]| -> Vec<String> { cells.iter().map(|c| cell(c)).collect() };
        let mut out = format!(
            "| {} |\n",
            self.line(&escape(&self.headers), &widths, " | ")
        );
        let rule: Vec<String> = widths
            .iter()
            .zip(&self.right)
            .map(|(w, right)| {
                let dashes = "-".repeat((*w).max(3) - 1);
                if *right {
                    format!("{dashes}:")
                } else {
                    format!("{dashes}-")
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            out.push_str(&format!(
                "| {} |\n",
                self.line(&escape(row), &widths, " | ")
            ));
        }
        out
    }
}

/// "-" for a missing figure.
pub fn count(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

pub fn fixed(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// Milliseconds: one decimal below 10 ms, whole numbers above.
pub fn ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v < 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
    }
}

fn quantile(s: &Summary, q: &str) -> Option<f64> {
    s.figures
        .latency_ms
        .as_ref()
        .and_then(|l| l.get(q).copied())
}

fn stable(s: &Summary, q: &str) -> Option<f64> {
    s.figures
        .stable_latency_ms
        .as_ref()
        .and_then(|l| l.get(q).copied())
}

/// The verdict as shown: the verdict, flagged when a challenge target was
/// missed (the challenge is not passed even though the checker is happy).
pub fn verdict_text(s: &Summary) -> String {
    if s.verdict == Verdict::Valid && !s.challenge_targets_met() {
        "valid, target missed".into()
    } else {
        s.verdict.as_str().into()
    }
}

const MATRIX_HEADERS: &[(&str, bool)] = &[
    ("challenge", false),
    ("nemesis", false),
    ("runner", false),
    ("verdict", false),
    ("ops", true),
    ("availability", true),
    ("msgs/op", true),
    ("p50 ms", true),
    ("p99 ms", true),
    ("max ms", true),
    ("stable p50/max ms", true),
    ("targets met", true),
];

/// An empty matrix table.
pub fn matrix() -> Table {
    Table::new(MATRIX_HEADERS)
}

/// One matrix line for a run.
pub fn matrix_row(s: &Summary) -> Vec<String> {
    let stable_cell = match (stable(s, "0.5"), stable(s, "1")) {
        (None, None) => "-".to_string(),
        (a, b) => format!("{}/{}", ms(a), ms(b)),
    };
    vec![
        s.challenge
            .clone()
            .or_else(|| s.workload.clone())
            .unwrap_or_default(),
        s.nemesis.clone(),
        s.runner.to_string(),
        verdict_text(s),
        count(s.figures.ops),
        fixed(s.figures.availability, 4),
        fixed(s.figures.msgs_per_op, 2),
        ms(quantile(s, "0.5")),
        ms(quantile(s, "0.99")),
        ms(quantile(s, "1")),
        stable_cell,
        s.targets_label(),
    ]
}

/// A matrix line for a run that could not happen (e.g. "no binary").
pub fn matrix_placeholder(challenge: &str, nemesis: &str, runner: &str, why: &str) -> Vec<String> {
    let mut row = vec![challenge.into(), nemesis.into(), runner.into(), why.into()];
    row.resize(MATRIX_HEADERS.len(), String::new());
    row
}

/// How a comparison row shows a run.
type Cell = fn(&Summary) -> String;

/// Runs side by side: one column per run, one row per figure.
pub fn comparison(runs: &[(String, Summary)]) -> Table {
    let mut headers: Vec<(&str, bool)> = vec![("", false)];
    headers.extend(runs.iter().map(|(label, _)| (label.as_str(), true)));
    let mut table = Table::new(&headers);
    let rows: Vec<(&str, Cell)> = vec![
        ("challenge", |s| s.challenge.clone().unwrap_or("-".into())),
        ("workload", |s| s.workload.clone().unwrap_or("-".into())),
        ("nemesis", |s| s.nemesis.clone()),
        ("runner", |s| s.runner_version.clone()),
        ("seed", |s| s.seed.map_or("-".into(), |v| v.to_string())),
        ("started", |s| s.started.clone().unwrap_or("-".into())),
        ("verdict", verdict_text),
        ("ops", |s| count(s.figures.ops)),
        ("ok / fail / info", |s| {
            format!(
                "{} / {} / {}",
                count(s.figures.ok),
                count(s.figures.fail),
                count(s.figures.info)
            )
        }),
        ("availability", |s| fixed(s.figures.availability, 4)),
        ("msgs/op (servers)", |s| fixed(s.figures.msgs_per_op, 2)),
        ("server msgs", |s| count(s.figures.server_msgs)),
        ("latency p50 ms", |s| ms(quantile(s, "0.5"))),
        ("latency p95 ms", |s| ms(quantile(s, "0.95"))),
        ("latency p99 ms", |s| ms(quantile(s, "0.99"))),
        ("latency max ms", |s| ms(quantile(s, "1"))),
        ("stable latency p50 ms", |s| ms(stable(s, "0.5"))),
        ("stable latency max ms", |s| ms(stable(s, "1"))),
        ("targets met", |s| s.targets_label()),
        ("anomalies", |s| {
            if s.anomalies.is_empty() {
                "none".into()
            } else {
                s.anomalies.join(", ")
            }
        }),
    ];
    for (label, cell) in rows {
        let mut row = vec![label.to_string()];
        row.extend(runs.iter().map(|(_, s)| cell(s)));
        table.push(row);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_and_markdown_align_columns() {
        let mut t = Table::new(&[("name", false), ("ops", true)]);
        t.push(vec!["echo".into(), "51".into()]);
        t.push(vec!["a|b".into(), "1234".into()]);
        assert_eq!(
            t.terminal(),
            "name   ops\n----  ----\necho    51\na|b   1234\n"
        );
        let md = t.markdown();
        assert!(md.starts_with("| name |  ops |\n| ---- | ---: |\n"), "{md}");
        assert!(md.contains("a\\|b"), "{md}");
    }
}
