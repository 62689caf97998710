//! `internet`: contacts who share only a bootstrap node, on a lab internet with home NAT routers.
//!
//! Runs `lab/internet.sh` (root: network namespaces, veth, iptables), which builds a "public" network with two
//! federated `tern-bootstrap` nodes, two public users and six homes behind NAT (endpoint-independent and
//! symmetric), runs `tern-node run --bootstrap …` in each and watches from outside. It writes one line per
//! pair and per message; this module turns them into the usual table. Baseline, in the same run: the same
//! hosts with port forwards, the second user dialling the first's known address (`--peer`, no bootstrap).
//!
//! Without root (or without `ip`/`iptables`) the scenario says so and is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::{Row, Target, note, print_table};

/// The pair kinds the lab runs, in its order: two public users, two endpoint-independent NATs, two symmetric
/// NATs, one of each.
pub const KINDS: [&str; 4] = ["public", "eim", "symmetric", "mixed"];
/// Contacts should see each other online within this long of the later one's start (issue 12).
pub const PRESENCE_TARGET_S: f64 = 5.0;
/// Pairs behind endpoint-independent NATs should be direct within this long of both being online.
pub const DIRECT_TARGET_S: f64 = 10.0;

/// One pair in one round (`pair KIND ROUND FIRST DIRECT AFTER_WAIT AT_END A_SAW B_SAW TYPING`).
#[derive(Debug, Clone, PartialEq)]
pub struct PairResult {
    pub kind: String,
    /// Seconds from the later start to the first connection between them (either side's `online`).
    pub first_connection: Option<f64>,
    /// Seconds from the later start to a direct TCP connection between their public addresses.
    pub direct: Option<f64>,
    /// `direct`, `relayed` or `none` after the quiet wait (before any message).
    pub after_wait: String,
    /// The same at the end of the round.
    pub at_end: String,
    /// Seconds from the later start until each saw the other online.
    pub seen: [Option<f64>; 2],
    pub typing_seen: bool,
}

/// One message: the pair kind, the path when it was sent, its latency (None: not received in time).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageResult {
    pub kind: String,
    pub path: String,
    pub latency_ms: Option<f64>,
    pub baseline: bool,
}

/// Everything one run of the lab reported.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LabResults {
    pub pairs: Vec<PairResult>,
    pub messages: Vec<MessageResult>,
    /// Per kind, seconds from the dialler's start to the baseline connection.
    pub baseline_connect: Vec<(String, Option<f64>)>,
}

fn number(field: &str) -> Result<Option<f64>> {
    if field == "-" || field == "lost" {
        return Ok(None);
    }
    Ok(Some(
        field
            .parse()
            .with_context(|| format!("not a number: {field:?}"))?,
    ))
}

/// Parses the lab's results file.
pub fn parse(text: &str) -> Result<LabResults> {
    let mut out = LabResults::default();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("results line {}: {line:?}", i + 1);
        match f.as_slice() {
            [] => {}
            [
                "pair",
                kind,
                _round,
                first,
                direct,
                after_wait,
                at_end,
                a,
                b,
                typing,
            ] => {
                out.pairs.push(PairResult {
                    kind: (*kind).to_owned(),
                    first_connection: number(first).with_context(bad)?,
                    direct: number(direct).with_context(bad)?,
                    after_wait: (*after_wait).to_owned(),
                    at_end: (*at_end).to_owned(),
                    seen: [number(a).with_context(bad)?, number(b).with_context(bad)?],
                    typing_seen: *typing == "yes",
                });
            }
            ["msg", kind, _round, path, ms] => out.messages.push(MessageResult {
                kind: (*kind).to_owned(),
                path: (*path).to_owned(),
                latency_ms: number(ms).with_context(bad)?,
                baseline: false,
            }),
            ["basemsg", kind, path, ms] => out.messages.push(MessageResult {
                kind: (*kind).to_owned(),
                path: (*path).to_owned(),
                latency_ms: number(ms).with_context(bad)?,
                baseline: true,
            }),
            ["base", kind, secs] => out
                .baseline_connect
                .push(((*kind).to_owned(), number(secs).with_context(bad)?)),
            _ => bail!("{}", bad()),
        }
    }
    Ok(out)
}

/// The nearest-rank percentile `p` of `values` (sorted here), as `crate::percentile` does for durations.
fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(rank.min(v.len().saturating_sub(1))).copied()
}

/// Percent of `items` for which `f` holds (0 when there are none).
fn percent<T>(items: &[&T], f: impl Fn(&T) -> bool) -> f64 {
    if items.is_empty() {
        return 0.0;
    }
    100.0 * items.iter().filter(|i| f(i)).count() as f64 / items.len() as f64
}

/// The table rows for one run's results.
pub fn rows(results: &LabResults) -> Vec<Row> {
    let mut rows = Vec::new();
    // A missing figure (nothing connected, no message of that path) shows as NaN: never "met".
    let or_nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    for kind in KINDS {
        let pairs: Vec<&PairResult> = results.pairs.iter().filter(|p| p.kind == kind).collect();
        if pairs.is_empty() {
            continue;
        }
        let base_connect = results
            .baseline_connect
            .iter()
            .find(|(k, _)| k == kind)
            .and_then(|(_, s)| *s);
        let firsts: Vec<f64> = pairs.iter().filter_map(|p| p.first_connection).collect();
        rows.push(Row::new(
            &format!(
                "{kind}: both online to their first connection (median of {}, {} never)",
                pairs.len(),
                pairs.len() - firsts.len()
            ),
            or_nan(percentile(&firsts, 0.5)),
            or_nan(base_connect),
            "s",
            Target::Below(PRESENCE_TARGET_S),
        ));
        rows.push(Row::new(
            &format!("{kind}: pairs where both saw the other online within {PRESENCE_TARGET_S} s"),
            percent(&pairs, |p| {
                p.seen
                    .iter()
                    .all(|s| s.is_some_and(|s| s <= PRESENCE_TARGET_S))
            }),
            100.0,
            "%",
            Target::AtLeast(1.0),
        ));
        if kind != "symmetric" && kind != "mixed" {
            rows.push(Row::new(
                &format!("{kind}: pairs direct within {DIRECT_TARGET_S} s of both online"),
                percent(&pairs, |p| p.direct.is_some_and(|d| d <= DIRECT_TARGET_S)),
                100.0,
                "%",
                Target::AtLeast(0.9),
            ));
        }
        rows.push(Row::new(
            &format!("{kind}: pairs whose contact shows typing"),
            percent(&pairs, |p| p.typing_seen),
            100.0,
            "%",
            Target::AtLeast(1.0),
        ));
        let latencies = |path: Option<&str>, baseline: bool| -> Vec<f64> {
            results
                .messages
                .iter()
                .filter(|m| m.kind == kind && m.baseline == baseline)
                .filter(|m| path.is_none_or(|p| m.path == p))
                .filter_map(|m| m.latency_ms)
                .collect()
        };
        let base = latencies(None, true);
        for (path, target) in [
            ("direct", Target::AtMost(1.5)),
            ("relayed", Target::Report),
            ("none", Target::Report),
        ] {
            let got = latencies(Some(path), false);
            if got.is_empty() {
                continue;
            }
            let label = match path {
                "none" => "sent with no connection (dial, relay or mailbox)",
                other => other,
            };
            for (p, name) in [(0.5, "median"), (0.99, "p99")] {
                rows.push(Row::new(
                    &format!("{kind}: message latency, {label} ({name} of {})", got.len()),
                    or_nan(percentile(&got, p)),
                    or_nan(percentile(&base, p)),
                    "ms",
                    target,
                ));
            }
        }
    }
    let mailbox_risk = results
        .messages
        .iter()
        .filter(|m| !m.baseline && m.path == "none")
        .count();
    rows.push(Row::new(
        "messages sent while the two online contacts had no connection",
        mailbox_risk as f64,
        0.0,
        "msgs",
        Target::Below(1.0),
    ));
    let lost = results
        .messages
        .iter()
        .filter(|m| m.latency_ms.is_none())
        .count();
    rows.push(Row::new(
        "messages not received within 30 s",
        lost as f64,
        0.0,
        "msgs",
        Target::Below(1.0),
    ));
    rows
}

/// How the pairs ended, per kind: "eim: after the wait 0 direct / 0 relayed / 3 none; at the end …".
fn paths_note(results: &LabResults) -> String {
    let mut parts = Vec::new();
    for kind in KINDS {
        let pairs: Vec<&PairResult> = results.pairs.iter().filter(|p| p.kind == kind).collect();
        if pairs.is_empty() {
            continue;
        }
        let count = |at_end: bool, path: &str| {
            pairs
                .iter()
                .filter(|p| if at_end { &p.at_end } else { &p.after_wait } == path)
                .count()
        };
        parts.push(format!(
            "{kind}: after the quiet wait {} direct / {} relayed / {} unconnected, at the end {} / {} / {}",
            count(false, "direct"),
            count(false, "relayed"),
            count(false, "none"),
            count(true, "direct"),
            count(true, "relayed"),
            count(true, "none"),
        ));
    }
    format!("paths: {}", parts.join("; "))
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn sibling(name: &str) -> Result<PathBuf> {
    let bin = std::env::current_exe()?.with_file_name(name);
    ensure!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --release --workspace --bin {name}`",
        bin.display()
    );
    Ok(bin)
}

pub fn run(rounds: usize, messages: usize) -> Result<()> {
    if !is_root() {
        println!(
            "\n(internet: skipped, it needs root for network namespaces and iptables: run `sudo tern-bench internet`)"
        );
        return Ok(());
    }
    if let Some(missing) = ["ip", "iptables", "ss"].into_iter().find(|t| !have(t)) {
        println!(
            "\n(internet: skipped, `{missing}` is not installed: apt-get install iproute2 iptables)"
        );
        return Ok(());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab/internet.sh");
    let out = tempfile::NamedTempFile::new()?;
    let status = Command::new("bash")
        .arg(&script)
        .args(["--rounds", &rounds.to_string()])
        .args(["--messages", &messages.to_string()])
        .arg("--results")
        .arg(out.path())
        .env("TERN_NODE", sibling("tern-node")?)
        .env("TERN_BOOTSTRAP", sibling("tern-bootstrap")?)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(status.success(), "lab/internet.sh failed ({status})");
    let results = parse(&std::fs::read_to_string(out.path())?)?;
    ensure!(
        !results.pairs.is_empty(),
        "lab/internet.sh reported no pairs"
    );
    print_table(
        &format!(
            "internet: {rounds} rounds of 4 pairs sharing only bootstrap nodes (lab/internet.sh), {messages} messages each"
        ),
        &rows(&results),
    );
    note(&paths_note(&results));
    note(
        "clock: seconds from the later of the two `started` events; latency from writing the send command to the \
         receiver printing the message (both timestamped on this machine). Path: direct = a TCP connection \
         between the two public addresses (`ss`), relayed = online without one, none = not connected. \
         Baseline = the same hosts with port forwards, the second dialling the first's address (`--peer`).",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "pair eim 1 2.500 6.000 direct direct 2.5 2.6 yes\n\
        msg eim 1 direct 3.00\n\
        msg eim 1 none lost\n\
        pair eim 2 - - none relayed - 9.0 no\n\
        msg eim 2 relayed 5.00\n\
        base eim 0.004\n\
        basemsg eim direct 2.00\n";

    #[test]
    fn results_parse_and_turn_into_rows() {
        let r = parse(SAMPLE).unwrap();
        assert_eq!(r.pairs.len(), 2);
        assert_eq!(r.pairs[0].direct, Some(6.0));
        assert_eq!(r.pairs[1].first_connection, None);
        assert_eq!(r.messages.iter().filter(|m| m.baseline).count(), 1);
        assert_eq!(r.messages[1].latency_ms, None);
        let rows = rows(&r);
        let find = |prefix: &str| {
            rows.iter()
                .find(|row| row.figure.starts_with(prefix))
                .unwrap_or_else(|| panic!("no row {prefix}"))
        };
        assert_eq!(find("eim: pairs direct within").tern, 50.0);
        assert_eq!(find("eim: pairs where both saw").tern, 50.0);
        assert_eq!(find("eim: pairs whose contact shows typing").tern, 50.0);
        let direct = find("eim: message latency, direct (median");
        assert_eq!((direct.tern, direct.baseline), (3.0, 2.0));
        assert_eq!(find("messages not received").tern, 1.0);
        assert_eq!(find("messages sent while").tern, 1.0);
        assert!(
            paths_note(&r)
                .contains("eim: after the quiet wait 1 direct / 0 relayed / 1 unconnected")
        );
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert!(parse("pair eim 1 x").is_err());
        assert!(parse("msg eim 1 direct fast").is_err());
    }
}
