//! The tables every scenario prints, kept for the markdown report `all` writes.

use std::fmt::Write as _;
use std::sync::Mutex;

/// What a figure must reach.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// Tern / baseline at most this (lower is better).
    AtMost(f64),
    /// Tern / baseline at least this (higher is better).
    AtLeast(f64),
    /// Tern's own figure below this, in the row's unit.
    Below(f64),
    /// No target: reported for context.
    Report,
}

impl Target {
    fn describe(self, unit: &str) -> String {
        match self {
            Self::AtMost(r) => format!("<= {r}x"),
            Self::AtLeast(r) => format!(">= {r}x"),
            Self::Below(v) => format!("< {v} {unit}"),
            Self::Report => "-".into(),
        }
    }

    /// "met", "MISSED (…)" or "-".
    fn verdict(self, tern: f64, baseline: f64) -> String {
        let ratio = tern / baseline;
        match self {
            Self::AtMost(r) if ratio <= r => "met".into(),
            Self::AtMost(r) => format!("MISSED: {:.2}x the allowed ratio", ratio / r),
            Self::AtLeast(r) if ratio >= r => "met".into(),
            Self::AtLeast(_) if ratio <= 0.0 => "MISSED: none".into(),
            Self::AtLeast(r) => format!("MISSED: {:.2}x short", r / ratio),
            Self::Below(v) if tern < v => "met".into(),
            Self::Below(v) => format!("MISSED: {:.2}x over", tern / v),
            Self::Report => "-".into(),
        }
    }
}

/// One figure beside its baseline.
#[derive(Clone, Debug)]
pub struct Row {
    pub figure: String,
    pub tern: f64,
    pub baseline: f64,
    pub unit: &'static str,
    pub target: Target,
}

impl Row {
    pub fn new(figure: &str, tern: f64, baseline: f64, unit: &'static str, target: Target) -> Self {
        Self {
            figure: figure.to_owned(),
            tern,
            baseline,
            unit,
            target,
        }
    }
}

struct Section {
    title: String,
    rows: Vec<Row>,
    notes: Vec<String>,
}

static SECTIONS: Mutex<Vec<Section>> = Mutex::new(Vec::new());

fn number(v: f64) -> String {
    if v.abs() >= 100.0 || (v.fract() == 0.0 && v.abs() < 1e15) {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Tern / baseline, or `-` when the baseline is zero (a count of misses, say).
fn ratio(tern: f64, baseline: f64) -> String {
    if baseline == 0.0 {
        "-".into()
    } else {
        format!("{:.2}x", tern / baseline)
    }
}

fn table(title: &str, rows: &[Row]) -> String {
    let mut out = format!("\n## {title}\n\n");
    out.push_str("| figure | Tern | baseline | ratio | target | verdict |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} {} | {} {} | {} | {} | {} |",
            r.figure,
            number(r.tern),
            r.unit,
            number(r.baseline),
            r.unit,
            ratio(r.tern, r.baseline),
            r.target.describe(r.unit),
            r.target.verdict(r.tern, r.baseline),
        );
    }
    out
}

/// Prints a scenario's table and keeps it for the report.
pub fn print_table(title: &str, rows: &[Row]) {
    print!("{}", table(title, rows));
    if let Ok(mut sections) = SECTIONS.lock() {
        sections.push(Section {
            title: title.to_owned(),
            rows: rows.to_vec(),
            notes: Vec::new(),
        });
    }
}

/// Prints a line under the last table and keeps it with it.
pub fn note(text: &str) {
    println!("\n{text}");
    if let Ok(mut sections) = SECTIONS.lock()
        && let Some(last) = sections.last_mut()
    {
        last.notes.push(text.to_owned());
    }
}

/// Every table and note printed so far, as markdown.
pub fn markdown() -> String {
    let mut out = String::new();
    if let Ok(sections) = SECTIONS.lock() {
        for section in sections.iter() {
            out.push_str(&table(&section.title, &section.rows));
            for n in &section.notes {
                let _ = write!(out, "\n{n}\n");
            }
        }
    }
    out
}

/// The process's peak resident set (`VmHWM`) in bytes; 0 where `/proc` cannot say.
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Starts a new peak: the kernel sets `VmHWM` back to the current resident set (Linux `clear_refs` 5).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
