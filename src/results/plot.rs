//! The report's charts, drawn as SVG with `plotters`: latency of every
//! operation over time and the completion rate, with the periods of each
//! fault (network partitioned, nodes killed, nodes paused) shaded, as
//! Jepsen's perf plots do.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::history::{History, Op, OpType};

const SIZE: (u32, u32) = (880, 320);
/// More points than this are thinned evenly: a browser draws thousands of
/// SVG circles quickly, hundreds of thousands slowly.
const MAX_POINTS: usize = 5000;
/// A kind of fault the nemesis injects, as the history records it.
pub struct Fault {
    /// The nemesis operation that begins it, and the one that ends it.
    pub start: &'static str,
    pub stop: &'static str,
    /// What the shading means, in the legend and the report.
    pub label: &'static str,
    colour: RGBColor,
}

/// The faults the report shades: partitions, kills (until the restart) and
/// pauses (until the resume).
pub const FAULTS: [Fault; 3] = [
    Fault {
        start: "start-partition",
        stop: "stop-partition",
        label: "network partitioned",
        colour: RGBColor(250, 200, 190),
    },
    Fault {
        start: "kill",
        stop: "start",
        label: "nodes killed",
        colour: RGBColor(190, 190, 190),
    },
    Fault {
        start: "pause",
        stop: "resume",
        label: "nodes paused",
        colour: RGBColor(190, 210, 250),
    },
];
const FAILED: RGBColor = RGBColor(214, 39, 40);
const INDETERMINATE: RGBColor = RGBColor(255, 127, 14);
/// Colours for the operation functions (`read`, `broadcast`, ...).
const SERIES: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(188, 189, 34),
];

fn seconds(op: &Op) -> f64 {
    op.time as f64 / 1e9
}

/// When the network was partitioned, in seconds: from each
/// `start-partition` to the next `stop-partition` (or the end).
pub fn partition_periods(history: &History) -> Vec<(f64, f64)> {
    fault_periods(history, &FAULTS[0])
}

/// When a fault was in effect, in seconds: from each of its start
/// operations to the next stop operation (or the end). The nemesis records
/// an invocation and a completion of each; the first of a pair counts.
pub fn fault_periods(history: &History, fault: &Fault) -> Vec<(f64, f64)> {
    let end = history.ops().last().map_or(0.0, seconds);
    let mut periods = Vec::new();
    let mut started: Option<f64> = None;
    for op in history.ops().iter().filter(|op| !op.is_client()) {
        if op.f == fault.start {
            started = started.or(Some(seconds(op)));
        } else if op.f == fault.stop
            && let Some(from) = started.take()
        {
            periods.push((from, seconds(op)));
        }
    }
    if let Some(from) = started {
        periods.push((from, end));
    }
    periods
}

/// One completed client operation: when it was invoked, how long it took
/// and how it ended.
struct Sample {
    at: f64,
    latency_ms: f64,
    f: String,
    kind: OpType,
}

fn samples(history: &History) -> Vec<Sample> {
    history
        .pairs()
        .filter_map(|(inv, done)| {
            done.map(|d| Sample {
                at: seconds(inv),
                latency_ms: d.time.saturating_sub(inv.time) as f64 / 1e6,
                f: inv.f.clone(),
                kind: d.kind,
            })
        })
        .collect()
}

/// The functions in order of first appearance, each with its colour.
fn colours(samples: &[Sample]) -> BTreeMap<String, RGBColor> {
    let mut names: Vec<&str> = Vec::new();
    for s in samples {
        if !names.contains(&s.f.as_str()) {
            names.push(&s.f);
        }
    }
    names
        .iter()
        .enumerate()
        .map(|(i, f)| (f.to_string(), SERIES[i % SERIES.len()]))
        .collect()
}

fn plot_error(e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow!("drawing a chart failed: {e:?}")
}

/// Latency (log scale) of every operation at its invocation time: ok
/// operations as dots coloured by function, failed ones as red crosses,
/// indeterminate ones as orange triangles.
pub fn latency_svg(history: &History) -> Result<String> {
    let all = samples(history);
    let stride = all.len().div_ceil(MAX_POINTS).max(1);
    let shown: Vec<&Sample> = all.iter().step_by(stride).collect();
    let t_max = time_span(history);
    let y_max = shown.iter().map(|s| s.latency_ms).fold(1.0, f64::max) * 1.5;
    let y_min = shown
        .iter()
        .map(|s| s.latency_ms)
        .filter(|l| *l > 0.0)
        .fold(y_max, f64::min)
        .clamp(0.001, 0.1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Latency of each operation", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..t_max, (y_min..y_max).log_scale())
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("latency (ms)")
            .draw()
            .map_err(plot_error)?;
        shade(&mut chart, history, y_min, y_max)?;
        let clamp = |l: f64| l.max(y_min);
        for (f, colour) in colours(&all) {
            let points = shown
                .iter()
                .filter(|s| s.f == f && s.kind == OpType::Ok)
                .map(|s| Circle::new((s.at, clamp(s.latency_ms)), 2, colour.filled()));
            chart
                .draw_series(points)
                .map_err(plot_error)?
                .label(format!("{f} ok"))
                .legend(move |(x, y)| Circle::new((x, y), 3, colour.filled()));
        }
        let failed = shown
            .iter()
            .filter(|s| s.kind == OpType::Fail)
            .map(|s| Cross::new((s.at, clamp(s.latency_ms)), 3, FAILED));
        chart
            .draw_series(failed)
            .map_err(plot_error)?
            .label("fail")
            .legend(|(x, y)| Cross::new((x, y), 3, FAILED));
        let indeterminate = shown
            .iter()
            .filter(|s| s.kind == OpType::Info)
            .map(|s| TriangleMarker::new((s.at, clamp(s.latency_ms)), 3, INDETERMINATE));
        chart
            .draw_series(indeterminate)
            .map_err(plot_error)?
            .label("info (indeterminate)")
            .legend(|(x, y)| TriangleMarker::new((x, y), 3, INDETERMINATE));
        legend(&mut chart)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// Completions per second, per function (ok) and for everything that did
/// not succeed (fail or info).
pub fn rate_svg(history: &History) -> Result<String> {
    let all = samples(history);
    let t_max = time_span(history);
    let buckets = t_max.ceil().max(1.0) as usize;
    let mut ok: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut not_ok = vec![0.0; buckets];
    for s in &all {
        let b = (s.at.floor() as usize).min(buckets - 1);
        match s.kind {
            OpType::Ok => ok.entry(s.f.clone()).or_insert_with(|| vec![0.0; buckets])[b] += 1.0,
            _ => not_ok[b] += 1.0,
        }
    }
    let y_max = ok
        .values()
        .chain(std::iter::once(&not_ok))
        .flatten()
        .fold(1.0, |a: f64, b| a.max(*b))
        * 1.15;
    let line = |counts: &[f64]| -> Vec<(f64, f64)> {
        counts
            .iter()
            .enumerate()
            .map(|(i, c)| (i as f64 + 0.5, *c))
            .collect()
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Completions per second", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..t_max, 0f64..y_max)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("operations / s")
            .draw()
            .map_err(plot_error)?;
        shade(&mut chart, history, 0.0, y_max)?;
        let colour_of = colours(&all);
        for (f, counts) in &ok {
            let colour = colour_of.get(f).copied().unwrap_or(BLACK);
            chart
                .draw_series(LineSeries::new(line(counts), colour.stroke_width(2)))
                .map_err(plot_error)?
                .label(format!("{f} ok"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                });
        }
        if not_ok.iter().any(|c| *c > 0.0) {
            chart
                .draw_series(LineSeries::new(line(&not_ok), FAILED.stroke_width(2)))
                .map_err(plot_error)?
                .label("fail or info")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], FAILED.stroke_width(2))
                });
        }
        legend(&mut chart)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// The test's length in seconds (at least one).
fn time_span(history: &History) -> f64 {
    history.ops().last().map_or(1.0, seconds).max(1.0)
}

type Chart<'a, Y> =
    ChartContext<'a, SVGBackend<'a>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>;

/// Shades the periods of every fault behind the data, one colour each.
fn shade<Y>(chart: &mut Chart<'_, Y>, history: &History, y_min: f64, y_max: f64) -> Result<()>
where
    Y: Ranged<ValueType = f64>,
{
    for fault in &FAULTS {
        let periods = fault_periods(history, fault);
        if periods.is_empty() {
            continue;
        }
        let colour = fault.colour;
        let rects = periods.into_iter().map(|(from, to)| {
            Rectangle::new([(from, y_min), (to, y_max)], colour.mix(0.5).filled())
        });
        chart
            .draw_series(rects)
            .map_err(plot_error)?
            .label(fault.label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], colour.filled()));
    }
    Ok(())
}

fn legend<Y>(chart: &mut Chart<'_, Y>) -> Result<()>
where
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(plot_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;
    use serde_json::json;

    fn history() -> History {
        let mut ops = Vec::new();
        let mut push = |time: u64, kind: OpType, process: Process, f: &str| {
            ops.push(Op::new(ops.len(), time, kind, process, f, json!(null)));
        };
        push(0, OpType::Info, Process::Nemesis, "start-partition");
        for i in 0..20u64 {
            let t = i * 200_000_000;
            push(t, OpType::Invoke, Process::Client(i % 2), "read");
            let kind = if i == 7 { OpType::Fail } else { OpType::Ok };
            push(t + 1_500_000, kind, Process::Client(i % 2), "read");
        }
        push(
            2_000_000_000,
            OpType::Info,
            Process::Nemesis,
            "stop-partition",
        );
        History::new(ops)
    }

    #[test]
    fn partitions_are_paired_start_to_stop() {
        assert_eq!(partition_periods(&history()), [(0.0, 2.0)]);
    }

    #[test]
    fn kills_and_pauses_are_shaded_until_restart_and_resume() {
        let mut ops = history().ops().to_vec();
        let mut push = |time: u64, f: &str| {
            let index = ops.len();
            ops.push(Op::new(
                index,
                time,
                OpType::Info,
                Process::Nemesis,
                f,
                json!(null),
            ));
        };
        push(2_100_000_000, "kill");
        push(2_500_000_000, "start");
        push(2_600_000_000, "pause");
        push(2_900_000_000, "resume");
        let history = History::new(ops);
        assert_eq!(fault_periods(&history, &FAULTS[1]), [(2.1, 2.5)]);
        assert_eq!(fault_periods(&history, &FAULTS[2]), [(2.6, 2.9)]);
        let svg = latency_svg(&history).unwrap();
        assert!(svg.contains("nodes killed") && svg.contains("nodes paused"));
    }

    #[test]
    fn charts_are_svg_with_the_partition_shaded() {
        let svg = latency_svg(&history()).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("network partitioned"));
        assert!(svg.contains("read ok"));
        let rate = rate_svg(&history()).unwrap();
        assert!(rate.contains("fail or info"));
    }
}
