//! The status report in Prometheus' text exposition format (`/metrics`), with conventional
//! names: `roost_` prefix, `_total` for counters, `_seconds` for times, low-cardinality labels
//! (a state kind, never a mailbox or user name).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::StatusReport;

/// The `Content-Type` Prometheus expects.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value (`\`, `"`, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Renders every metric.
pub fn render(report: &StatusReport) -> String {
    let mut out = String::with_capacity(4096);
    server(&mut out, report);
    listeners(&mut out, report);
    connections(&mut out, report);
    logins(&mut out, report);
    counters(&mut out, report);
    out
}

/// The process: version, start time, uptime.
fn server(out: &mut String, report: &StatusReport) {
    let s = &report.server;
    family(
        out,
        "roost_build_info",
        "gauge",
        "The running roost's version.",
    );
    let _ = writeln!(
        out,
        "roost_build_info{{version=\"{}\"}} 1",
        label(&s.version)
    );
    family(
        out,
        "roost_start_time_seconds",
        "gauge",
        "When the server started, in seconds since the Unix epoch.",
    );
    let _ = writeln!(out, "roost_start_time_seconds {}", s.started);
    family(
        out,
        "roost_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(out, "roost_uptime_seconds {}", s.uptime_secs);
}

/// Open connections per listening socket.
fn listeners(out: &mut String, report: &StatusReport) {
    family(
        out,
        "roost_listener_connections",
        "gauge",
        "Open connections per listening socket.",
    );
    for l in &report.listeners {
        let _ = writeln!(
            out,
            "roost_listener_connections{{proto=\"{}\",address=\"{}\",tls=\"{}\"}} {}",
            label(&l.proto),
            l.local,
            label(&l.tls.to_ascii_lowercase()),
            l.connections
        );
    }
}

/// Client connections counted by protocol and the kind of state (its first word), so the
/// labels stay few.
fn connections(out: &mut String, report: &StatusReport) {
    family(
        out,
        "roost_connections",
        "gauge",
        "Client connections by protocol and state.",
    );
    let mut by_state: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for c in &report.connections {
        let kind = c.state.split(' ').next().unwrap_or_default();
        *by_state.entry((&c.proto, kind)).or_default() += 1;
    }
    for ((proto, state), n) in by_state {
        let _ = writeln!(
            out,
            "roost_connections{{proto=\"{}\",state=\"{}\"}} {n}",
            label(proto),
            label(&state.to_ascii_lowercase())
        );
    }
}

/// Connections accepted and login attempts, by protocol (and result).
fn logins(out: &mut String, report: &StatusReport) {
    family(
        out,
        "roost_connections_accepted_total",
        "counter",
        "Client connections accepted, by protocol.",
    );
    for c in &report.counters.connections {
        let _ = writeln!(
            out,
            "roost_connections_accepted_total{{proto=\"{}\"}} {}",
            label(&c.proto),
            c.total
        );
    }
    family(
        out,
        "roost_logins_total",
        "counter",
        "Login attempts by protocol and result.",
    );
    for l in &report.counters.logins {
        for (result, n) in [("ok", l.ok), ("failed", l.failed)] {
            let _ = writeln!(
                out,
                "roost_logins_total{{proto=\"{}\",result=\"{result}\"}} {n}",
                label(&l.proto)
            );
        }
    }
}

/// The counters without labels.
fn counters(out: &mut String, report: &StatusReport) {
    let c = &report.counters;
    for (name, help, value) in [
        (
            "roost_messages_delivered_total",
            "Messages delivered into mailboxes.",
            c.messages_delivered,
        ),
        (
            "roost_messages_retrieved_total",
            "Messages retrieved by clients.",
            c.messages_retrieved,
        ),
        (
            "roost_index_repairs_total",
            "Storage files (index, uidlist, cache) found damaged and rebuilt.",
            c.index_repairs,
        ),
        (
            "roost_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out.",
            c.tls_handshakes_failed,
        ),
    ] {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_cannot_break_the_format() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
