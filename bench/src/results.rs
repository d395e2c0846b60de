//! The results file: one line per number, `workload<TAB>server<TAB>metric<TAB>value`, appended
//! by every benchmark binary given `--results FILE`, read by `bench/run` to write BENCHMARKS.md.
//! Text values (a profile line, a version) are allowed; tabs and newlines in them become spaces.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

/// Where results go; without a file, nothing is written (the human-readable output remains).
#[derive(Clone, Default)]
pub struct Results {
    path: Option<PathBuf>,
}

impl Results {
    /// Results appended to `path`, or dropped when `None`.
    pub fn new(path: Option<PathBuf>) -> Results {
        Results { path }
    }

    /// Appends one value; a failure to write is reported once on stderr and otherwise ignored,
    /// as a benchmark's printed output still stands.
    pub fn put(&self, workload: &str, server: &str, metric: &str, value: impl ToString) {
        let Some(path) = &self.path else { return };
        let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
        let line = format!(
            "{}\t{}\t{}\t{}\n",
            clean(workload),
            clean(server),
            clean(metric),
            clean(&value.to_string())
        );
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            eprintln!("results: cannot append to {}: {e}", path.display());
        }
    }

    /// A number rounded to a sensible precision for a report.
    pub fn num(&self, workload: &str, server: &str, metric: &str, value: f64) {
        let text = if value.abs() >= 100.0 {
            format!("{value:.0}")
        } else if value.abs() >= 1.0 {
            format!("{value:.2}")
        } else {
            format!("{value:.4}")
        };
        self.put(workload, server, metric, text);
    }
}

/// Takes `--results FILE` out of `args` (wherever it is), leaving the rest.
pub fn take_results_flag(args: &mut Vec<String>) -> Results {
    match args.iter().position(|a| a == "--results") {
        Some(i) if i + 1 < args.len() => {
            let path = args.remove(i + 1);
            args.remove(i);
            Results::new(Some(PathBuf::from(path)))
        }
        _ => Results::new(None),
    }
}
