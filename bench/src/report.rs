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

/// A figure's runs: `(tern, baseline)` per run.
struct Runs<'a> {
    row: &'a Row,
    values: Vec<(f64, f64)>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Runs<'_> {
    /// The value the target judges: Tern's own figure for `Below`, the ratio otherwise.
    fn judged(&self) -> Vec<f64> {
        self.values
            .iter()
            .map(|&(tern, baseline)| match self.row.target {
                Target::Below(_) => tern,
                _ if baseline == 0.0 => 0.0,
                _ => tern / baseline,
            })
            .collect()
    }

    /// `Some(true)` when the runs' spread of the judged value is wider than the median's distance to the
    /// target (so one run may pass and another fail); `None` without a target.
    fn spread_wider_than_margin(&self) -> Option<bool> {
        let limit = match self.row.target {
            Target::AtMost(r) | Target::AtLeast(r) | Target::Below(r) => r,
            Target::Report => return None,
        };
        let judged = self.judged();
        let lo = judged.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = judged.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(hi - lo > (median(judged) - limit).abs())
    }

    fn line(&self) -> String {
        let r = self.row;
        let tern = median(self.values.iter().map(|v| v.0).collect());
        let baseline = median(self.values.iter().map(|v| v.1).collect());
        let judged = self.judged();
        let lo = judged.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = judged.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let spread = match r.target {
            Target::Below(_) => format!(
                "{} ({}-{}) {}",
                number(tern),
                number(lo),
                number(hi),
                r.unit
            ),
            _ if baseline == 0.0 => "-".into(),
            _ => format!("{:.2}x ({lo:.2}-{hi:.2}x)", median(judged.clone())),
        };
        // The verdict on the medians: Tern's median against the baseline's median keeps `Below` exact and
        // is within rounding of the median ratio for the others.
        let mut verdict = match r.target {
            Target::Below(_) => r.target.verdict(tern, baseline),
            _ if baseline == 0.0 => r.target.verdict(tern, baseline),
            _ => r.target.verdict(median(judged), 1.0),
        };
        if self.spread_wider_than_margin() == Some(true) {
            verdict.push_str("; SPREAD wider than the margin to the target");
        }
        format!(
            "| {} | {} {} | {} {} | {} | {} | {} |",
            r.figure,
            number(tern),
            r.unit,
            number(baseline),
            r.unit,
            spread,
            r.target.describe(r.unit),
            verdict,
        )
    }
}

/// With `--repeat N`: every table printed so far, merged by title and figure over the runs. Each figure is
/// the median of its runs, its ratio the median with the lowest and highest run beside it, and a figure
/// whose spread is wider than its margin to the target is flagged: one run alone could not be trusted
/// with its verdict.
pub fn merged_markdown(runs: usize) -> String {
    let Ok(sections) = SECTIONS.lock() else {
        return String::new();
    };
    let mut titles: Vec<&str> = Vec::new();
    for s in sections.iter() {
        if !titles.contains(&s.title.as_str()) {
            titles.push(&s.title);
        }
    }
    let mut out = String::new();
    for title in titles {
        let mut figures: Vec<Runs<'_>> = Vec::new();
        let mut notes = Vec::new();
        for section in sections.iter().filter(|s| s.title == title) {
            for row in &section.rows {
                match figures.iter_mut().find(|f| f.row.figure == row.figure) {
                    Some(f) => f.values.push((row.tern, row.baseline)),
                    None => figures.push(Runs {
                        row,
                        values: vec![(row.tern, row.baseline)],
                    }),
                }
            }
            notes.extend(section.notes.iter().cloned());
        }
        let _ = write!(
            out,
            "\n## {title}\n\nMedians of {runs} runs.\n\n\
             | figure | Tern | baseline | ratio: median (lowest-highest run) | target | verdict |\n\
             | --- | --- | --- | --- | --- | --- |\n"
        );
        for f in &figures {
            let _ = writeln!(out, "{}", f.line());
        }
        if notes.windows(2).all(|w| w[0] == w[1]) {
            if let Some(n) = notes.first() {
                let _ = write!(out, "\n{n}\n");
            }
        } else {
            for (i, n) in notes.iter().enumerate() {
                let _ = write!(out, "\nrun {}: {n}\n", i + 1);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(row: &Row, values: &[(f64, f64)]) -> String {
        Runs {
            row,
            values: values.to_vec(),
        }
        .line()
    }

    #[test]
    fn a_spread_wider_than_the_margin_is_flagged_and_a_narrow_one_is_not() {
        let row = Row::new("latency", 0.0, 0.0, "ms", Target::AtMost(1.5));
        // Ratios 1.4, 1.45, 1.6: median 1.45 is met by 0.05, the spread is 0.2.
        let wide = runs(&row, &[(1.4, 1.0), (2.9, 2.0), (3.2, 2.0)]);
        assert!(wide.contains("| 1.45x (1.40-1.60x) |"), "{wide}");
        assert!(wide.contains("| met; SPREAD"), "{wide}");
        // Ratios 1.0, 1.05, 1.1: met by 0.45 with a spread of 0.1.
        let narrow = runs(&row, &[(1.0, 1.0), (2.1, 2.0), (1.1, 1.0)]);
        assert!(narrow.ends_with("| met |"), "{narrow}");
        // A missed median stays missed, and a figure with no target is never flagged.
        let missed = runs(&row, &[(2.0, 1.0), (2.1, 1.0), (1.9, 1.0)]);
        assert!(
            missed.contains("MISSED: 1.33x the allowed ratio |"),
            "{missed}"
        );
        let plain = Row::new("context", 0.0, 0.0, "ms", Target::Report);
        assert!(runs(&plain, &[(1.0, 1.0), (9.0, 1.0)]).ends_with("| - |"));
    }

    #[test]
    fn below_targets_judge_terns_own_figure() {
        let row = Row::new("memory", 0.0, 0.0, "KB", Target::Below(40.0));
        let line = runs(&row, &[(39.0, 600.0), (41.0, 600.0), (39.5, 600.0)]);
        assert!(line.contains("| 39.50 (39-41) KB |"), "{line}");
        assert!(line.contains("| met; SPREAD"), "{line}");
    }
}
