//! The status report as plain-text tables: what `roost status` and `roost who` print, and
//! what `curl http://127.0.0.1:8025/` gets. Columns are as wide as their widest cell, like
//! `netstat` and `doveadm who`.

use std::collections::BTreeMap;

use super::report::{duration, utc, StatusReport};

/// Lays rows out in columns; `right` marks numeric columns.
fn columns(rows: &[Vec<String>], right: &[bool]) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .max()
            .unwrap_or(0)
    };
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let w = widths[i];
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&format!("{cell:>w$}"));
            } else if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}"));
            }
            if i + 1 < row.len() {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `roost status`: a header line, the listeners and the active connections.
pub fn status(report: &StatusReport) -> String {
    let s = &report.server;
    let mut out = format!(
        "roost {} on {}, up {}, config {}, storage {} ({})\n\nListeners\n",
        s.version,
        s.hostname,
        duration(s.uptime_secs),
        s.config,
        s.storage,
        s.process_model
    );
    out.push_str(&listeners(report));
    out.push_str(&format!(
        "\nActive connections ({})\n",
        report.connections.len()
    ));
    out.push_str(&connections(report));
    out.push_str(&since_start(report));
    out
}

/// The listening sockets, like `netstat -l`.
fn listeners(report: &StatusReport) -> String {
    let mut rows = vec![vec![
        "Proto".to_string(),
        "Local Address".into(),
        "State".into(),
        "TLS".into(),
        "Conns".into(),
    ]];
    for l in &report.listeners {
        rows.push(vec![
            l.proto.clone(),
            l.local.to_string(),
            l.state.clone(),
            l.tls.clone(),
            l.connections.to_string(),
        ]);
    }
    columns(&rows, &[false, false, false, false, true])
}

/// The client connections, like `netstat` without `-l`.
fn connections(report: &StatusReport) -> String {
    let mut rows = vec![[
        "Proto",
        "Local Address",
        "Foreign Address",
        "State",
        "TLS",
        "User",
        "Since (UTC)",
        "Bytes-In",
        "Bytes-Out",
        "Command",
    ]
    .map(String::from)
    .to_vec()];
    for c in &report.connections {
        rows.push(vec![
            c.proto.clone(),
            c.local.to_string(),
            c.foreign.to_string(),
            c.state.clone(),
            if c.tls { "yes" } else { "no" }.into(),
            c.user.clone().unwrap_or_else(|| "-".into()),
            utc(c.since),
            c.bytes_in.to_string(),
            c.bytes_out.to_string(),
            c.last_command.clone(),
        ]);
    }
    let right = [
        false, false, false, false, false, false, false, true, true, false,
    ];
    columns(&rows, &right)
}

/// The counters since start, on one line (logins only for protocols that listen).
fn since_start(report: &StatusReport) -> String {
    let c = &report.counters;
    let logins: Vec<String> = c
        .logins
        .iter()
        .filter(|l| report.listeners.iter().any(|r| r.proto == l.proto))
        .map(|l| format!("{} {} ok/{} failed", l.proto, l.ok, l.failed))
        .collect();
    format!(
        "\nSince start: logins {}; messages delivered {}, retrieved {}; index repairs {}; TLS handshakes failed {}\n",
        if logins.is_empty() { "-".into() } else { logins.join(", ") },
        c.messages_delivered,
        c.messages_retrieved,
        c.index_repairs,
        c.tls_handshakes_failed
    )
}

/// `roost who`: logged-in users, one line per user and protocol, like `doveadm who`.
pub fn who(report: &StatusReport) -> String {
    let mut groups: BTreeMap<(&str, &str), (usize, Vec<String>)> = BTreeMap::new();
    for c in &report.connections {
        if let Some(user) = &c.user {
            let (count, ips) = groups.entry((user, &c.proto)).or_default();
            *count += 1;
            let ip = c.foreign.ip().to_string();
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }
    let mut rows = vec![["username", "#", "proto", "(ips)"]
        .map(String::from)
        .to_vec()];
    for ((user, proto), (count, ips)) in &groups {
        rows.push(vec![
            (*user).to_string(),
            count.to_string(),
            (*proto).to_string(),
            format!("({})", ips.join(" ")),
        ]);
    }
    columns(&rows, &[false, true, false, false])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let rows = vec![
            vec!["Proto".to_string(), "N".into(), "Last".into()],
            vec!["submissions".to_string(), "12".into(), "x".into()],
        ];
        assert_eq!(
            columns(&rows, &[false, true, false]),
            "Proto         N  Last\nsubmissions  12  x\n"
        );
    }
}
