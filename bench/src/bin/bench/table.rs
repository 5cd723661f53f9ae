//! The results: samples per (server, load point), reduced to medians and
//! printed as a markdown table, ours against each baseline.

use std::collections::HashMap;

use socketserver_bench::stats::median;

use crate::matrix::{Family, Load, Row, Server};
use crate::measure::Sample;

type Key = (Family, &'static str, String);

/// Every sample taken, and why points failed.
#[derive(Default)]
pub struct Results {
    samples: HashMap<Key, Vec<Sample>>,
    failures: HashMap<Key, String>,
}

fn key(server: &Server, load: Load) -> Key {
    (server.family, server.name, load.label())
}

impl Results {
    pub fn add(&mut self, server: &Server, load: Load, sample: Result<Sample, String>) {
        match sample {
            Ok(s) => self.samples.entry(key(server, load)).or_default().push(s),
            Err(e) => {
                self.failures.insert(key(server, load), e);
            }
        }
    }

    /// Median rate and median CPU per operation; `None` without samples.
    fn medians(&self, server: &Server, load: Load) -> Option<(f64, f64, usize)> {
        let samples = self.samples.get(&key(server, load))?;
        let rates: Vec<f64> = samples.iter().map(|s| s.rate).collect();
        let cpu: Vec<f64> = samples.iter().map(|s| s.cpu_us).collect();
        Some((median(&rates)?, median(&cpu)?, samples.len()))
    }

    /// The median rate of `server` on `load`, if it has samples.
    pub fn median_rate(&self, server: &Server, load: Load) -> Option<f64> {
        self.medians(server, load).map(|(rate, _, _)| rate)
    }

    fn errors(&self, server: &Server, load: Load) -> (u64, u64) {
        self.samples.get(&key(server, load)).map_or((0, 0), |s| {
            (
                s.iter().map(|x| x.errors).sum(),
                s.iter().map(|x| x.lost).sum(),
            )
        })
    }

    /// The markdown table of `rows`, then notes on errors and failures.
    pub fn render(&self, rows: &[Row]) -> String {
        let mut out = String::from(
            "| group | point | ours | baseline | ours | baseline | ratio | target | ours CPU | baseline CPU | CPU ratio |\n\
             |---|---|---|---|---:|---:|---:|---|---:|---:|---:|\n",
        );
        let mut notes = Vec::new();
        for row in rows {
            let (unit, per) = row.load.unit();
            let ours = self.medians(&row.ours, row.load);
            let base = self.medians(&row.baseline, row.load);
            let rate = |m: Option<(f64, f64, usize)>| {
                m.map_or("-".into(), |(r, _, _)| format!("{} {unit}", thousands(r)))
            };
            let cpu = |m: Option<(f64, f64, usize)>| {
                m.map_or("-".into(), |(_, c, _)| format!("{c:.1} µs/{per}"))
            };
            let (ratio, cpu_ratio) = match (ours, base) {
                (Some((r1, c1, _)), Some((r2, c2, _))) if r2 > 0.0 => {
                    (Some(r1 / r2), (c2 > 0.0).then(|| c1 / c2))
                }
                _ => (None, None),
            };
            let target = match (row.target, ratio) {
                (Some(t), Some(r)) => format!("≥ {t} {}", if r >= t { "yes" } else { "**no**" }),
                (Some(t), None) => format!("≥ {t}"),
                (None, _) => String::new(),
            };
            out += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                row.ours.family.name(),
                row.load.label(),
                row.ours.name,
                row.baseline.name,
                rate(ours),
                rate(base),
                ratio.map_or("-".into(), |r| format!("{r:.2}")),
                target,
                cpu(ours),
                cpu(base),
                cpu_ratio.map_or("-".into(), |r| format!("{r:.2}")),
            );
            for server in [&row.ours, &row.baseline] {
                let k = key(server, row.load);
                let note = if let Some(why) = self.failures.get(&k) {
                    Some(format!(
                        "{} {} {}: failed: {why}",
                        server.family.name(),
                        server.name,
                        row.load.label()
                    ))
                } else {
                    let (errors, lost) = self.errors(server, row.load);
                    (errors > 0 || lost > 0).then(|| {
                        format!(
                            "{} {} {}: {errors} errors, {lost} lost (all runs)",
                            server.family.name(),
                            server.name,
                            row.load.label()
                        )
                    })
                };
                if let Some(note) = note.filter(|n| !notes.contains(n)) {
                    notes.push(note);
                }
            }
        }
        for note in notes {
            out += &format!("\n- {note}");
        }
        out
    }
}

/// `12345.6` as `12,346`; small values keep a decimal, two below 10.
fn thousands(x: f64) -> String {
    if x < 10.0 {
        return format!("{x:.2}");
    }
    if x < 100.0 {
        return format!("{x:.1}");
    }
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
