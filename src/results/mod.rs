//! Results tooling: summaries of challenge runs from either runner (our
//! `results.json` or real Maelstrom's `results.edn`), the tables of the
//! challenge matrix and of `glomers compare`, and the HTML report with its
//! charts.
//!
//! A run is loaded into a [`Run`] (results, history, runner), summarised
//! into a [`Summary`] (the small JSON kept in `maelstrom-results/`), and
//! shown as a [`table`] or an [`html`] page.

pub mod edn;
pub mod exec;
pub mod html;
pub mod maelstrom;
pub mod plot;
pub mod publish;
pub mod run;
pub mod summary;
pub mod table;

pub use run::{Run, RunnerKind};
pub use summary::{Summary, Verdict};
