//! Printing what the mixed load measured: a section per server and load, then one summary
//! table (the results file carries the same numbers for BENCHMARKS.md).

use crate::load::{percentile, OPS};
use crate::mixed::Report;

fn mb(kb: f64) -> f64 {
    kb / 1024.0
}

/// One server's load, in detail.
pub fn print_report(r: &Report) {
    let l = &r.load;
    println!("\n{} — {} clients:", r.kind.label(), r.clients);
    println!(
        "  load: {}/{} clients ran {:.1} s: {} commands OK, {:.0}/s; {} NO/BAD",
        l.clients_ok,
        l.clients_ok + l.fatal.len(),
        l.secs(),
        l.ok(),
        l.rate(),
        l.errors()
    );
    let all = l.all_latencies();
    println!(
        "  latency of all commands: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
    println!(
        "  {:<48} {:>8} {:>8} {:>6} {:>9} {:>9} {:>10}",
        "command", "OK", "per s", "NO/BAD", "p50 ms", "p99 ms", "bytes/resp"
    );
    for (op, acc) in OPS.iter().zip(&l.ops) {
        if acc.ok + acc.err == 0 {
            continue;
        }
        let n = acc.lat_us.len().max(1) as u64;
        println!(
            "  {:<48} {:>8} {:>8.0} {:>6} {:>9.2} {:>9.2} {:>10}",
            op.label(),
            acc.ok,
            acc.ok as f64 / l.secs(),
            acc.err,
            percentile(&acc.lat_us, 0.5),
            percentile(&acc.lat_us, 0.99),
            acc.bytes / n
        );
    }
    for e in &l.errors {
        println!("  error: {}", e.replace('\n', "\n         "));
    }
    for f in &l.fatal {
        println!("  client failed: {f}");
    }
    println!(
        "  CPU during the load: server tree {:.1} s ({:.0} µs/command), benchmark process {:.1} s",
        r.server_cpu,
        r.server_cpu * 1e6 / l.ok().max(1) as f64,
        r.client_cpu
    );
    println!(
        "  memory: peak sum of VmHWM {:.1} MB; under load ({} processes): RSS sum mean {:.1} / max {:.1} MB, \
         PSS sum mean {:.1} / max {:.1} MB",
        mb(r.peak_hwm_kb as f64),
        r.load_procs,
        mb(r.load_rss.0),
        mb(r.load_rss.1 as f64),
        mb(r.load_pss.0),
        mb(r.load_pss.1 as f64)
    );
    println!("  where: {}", r.breakdown);
    match r.exists_after {
        Some(n) => println!("  messages in INBOX after the load: {n}"),
        None => println!("  messages in INBOX after the load: could not SELECT"),
    }
    println!("  server log: {} warnings/errors", r.log.0);
    for l in &r.log.1 {
        println!("    {l}");
    }
}

/// One markdown table of every load.
pub fn print_summary(reports: &[Report]) {
    println!("\nsummary:\n");
    let mut header = String::from("|");
    let mut rule = String::from("|---");
    for r in reports {
        header.push_str(&format!(" | {}, {} clients", r.kind.key(), r.clients));
        rule.push_str("|---");
    }
    println!("{header} |\n{rule}|");
    let row = |label: &str, cell: &dyn Fn(&Report) -> String| {
        let mut line = format!("| {label}");
        for r in reports {
            line.push_str(&format!(" | {}", cell(r)));
        }
        println!("{line} |");
    };
    let dovecot = |r: &Report| {
        reports
            .iter()
            .find(|d| d.clients == r.clients && d.kind == roost_bench::servers::Kind::Dovecot)
    };
    row("commands/s", &|r| format!("{:.0}", r.load.rate()));
    row("× Dovecot", &|r| match dovecot(r) {
        Some(d) => format!("{:.2}×", r.load.rate() / d.load.rate().max(1e-9)),
        None => "-".into(),
    });
    row("latency p50 / p99, ms", &|r| {
        let all = r.load.all_latencies();
        format!(
            "{:.2} / {:.0}",
            percentile(&all, 0.5),
            percentile(&all, 0.99)
        )
    });
    row("NO/BAD; clients failed", &|r| {
        format!("{}; {}", r.load.errors(), r.load.fatal.len())
    });
    row("server CPU per command, µs", &|r| {
        format!("{:.0}", r.server_cpu * 1e6 / r.load.ok().max(1) as f64)
    });
    row("processes under load", &|r| r.load_procs.to_string());
    row("PSS sum under load (mean), MB", &|r| {
        format!("{:.1}", mb(r.load_pss.0))
    });
    row("peak sum of VmHWM, MB", &|r| {
        format!("{:.1}", mb(r.peak_hwm_kb as f64))
    });
}
