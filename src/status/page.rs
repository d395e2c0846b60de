//! The status page as HTML: charts of the last hour, three netstat-like tables and the
//! counters, readable in any browser without JavaScript, refreshing itself every few seconds.
//! Every value is escaped; rows carry `data-proto` so tests (and scrapers) can find them.

use std::fmt::Write as _;

use super::chart;
use super::report::{duration, utc, StatusReport};

/// Seconds between the page's automatic reloads.
pub const REFRESH_SECS: u32 = 5;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#1d232a;background:#fbfbf8}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.6em 0 .4em}\
.meta{color:#5a636d;margin:0}.meta b{color:#1d232a;font-weight:600}\
table{border-collapse:collapse;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}\
th,td{padding:.25em .9em .25em 0;text-align:left;white-space:nowrap}\
th{border-bottom:2px solid #c9ccd1;font-weight:600}tr+tr td{border-top:1px solid #e6e7ea}\
td.n,th.n{text-align:right}.none{color:#8a929b;font-style:italic}\
.st{font-weight:600}.LISTEN{color:#1f6f43}.ESTABLISHED{color:#8a5a00}.AUTHENTICATED,.SELECTED,.IDLE,.DATA{color:#1f4f8f}\
.row{display:flex;gap:3em;align-items:flex-start}\
.charts{flex-wrap:wrap;gap:2em}figure.chart{margin:0}figcaption{font-weight:600;margin-bottom:.3em}\
.peak{color:#5a636d;font-weight:400}.legend{font-size:.85em;margin-top:.2em}.legend span{margin-right:1em}\
.legend i{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:-.05em}\
.axis{display:flex;justify-content:space-between;width:295px;color:#8a929b;font-size:.8em}\
footer{margin-top:2em;color:#5a636d;font-size:.9em}";

/// The whole page.
pub fn render(report: &StatusReport) -> String {
    let s = &report.server;
    let mut out = String::with_capacity(8 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>roost on {host}</title><style>{STYLE}</style></head><body>\n\
         <h1>roost on {host}</h1>\n<p class=\"meta\">version <b>{version}</b> · up <b>{uptime}</b> \
         (since {since} UTC) · config <b>{config}</b> · storage <b>{storage}</b> ({location}) · {model}</p>\n",
        host = escape(&s.hostname),
        version = escape(&s.version),
        uptime = duration(s.uptime_secs),
        since = utc(s.started),
        config = escape(&s.config),
        storage = escape(&s.storage),
        location = escape(&s.mail_location),
        model = escape(&s.process_model),
    );
    charts(&mut out, report);
    listeners(&mut out, report);
    connections(&mut out, report);
    counters(&mut out, report);
    let _ = write!(
        out,
        "<footer>Refreshes every {REFRESH_SECS} s. Also as <a href=\"/status.json\">JSON</a> and \
         <a href=\"/metrics\">Prometheus metrics</a>; <code>roost status</code>, <code>roost who</code> \
         and <code>roost kick USER</code> on the command line.{workers}</footer>\n</body></html>\n",
        workers = if s.process_model.contains("workers") {
            " Sessions run in worker processes; the login process that relays their bytes reads \
             the commands and IMAP states shown here."
        } else {
            ""
        }
    );
    out
}

/// The last hour, per minute.
fn charts(out: &mut String, report: &StatusReport) {
    let h = &report.history;
    out.push_str("<h2>Last hour</h2>\n<div class=\"row charts\">\n");
    out.push_str(&chart::render(
        "connections",
        "Connections per minute",
        &h.connections,
    ));
    out.push_str(&chart::render("logins", "Logins per minute", &h.logins));
    out.push_str(&chart::render(
        "delivered",
        "Messages delivered per minute",
        &h.delivered,
    ));
    out.push_str("</div>\n");
}

fn listeners(out: &mut String, report: &StatusReport) {
    out.push_str(
        "<h2>Listeners</h2>\n<table id=\"listeners\"><tr><th>Proto</th><th>Local Address</th>\
         <th>State</th><th>TLS</th><th class=\"n\">Connections</th></tr>\n",
    );
    for l in &report.listeners {
        let _ = writeln!(
            out,
            "<tr class=\"listener\" data-proto=\"{p}\"><td>{p}</td><td>{addr}</td>\
             <td class=\"st {state}\">{state}</td><td>{tls}</td><td class=\"n\">{n}</td></tr>",
            p = escape(&l.proto),
            addr = l.local,
            state = escape(&l.state),
            tls = escape(&l.tls),
            n = l.connections,
        );
    }
    out.push_str("</table>\n");
}

fn connections(out: &mut String, report: &StatusReport) {
    let _ = write!(
        out,
        "<h2>Active connections ({})</h2>\n<table id=\"connections\"><tr><th>Proto</th>\
         <th>Local Address</th><th>Foreign Address</th><th>State</th><th>TLS</th><th>User</th>\
         <th>Connected since (UTC)</th><th class=\"n\">Bytes in</th><th class=\"n\">Bytes out</th>\
         <th>Last command</th></tr>\n",
        report.connections.len()
    );
    if report.connections.is_empty() {
        out.push_str("<tr><td colspan=\"10\" class=\"none\">no connections</td></tr>\n");
    }
    for c in &report.connections {
        let kind = c.state.split(' ').next().unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr class=\"connection\" data-proto=\"{p}\"><td>{p}</td><td>{local}</td>\
             <td>{foreign}</td><td class=\"st {kind}\">{state}</td><td>{tls}</td><td>{user}</td><td>{since}</td>\
             <td class=\"n\">{bin}</td><td class=\"n\">{bout}</td><td>{cmd}</td></tr>",
            p = escape(&c.proto),
            tls = if c.tls { "yes" } else { "no" },
            local = c.local,
            foreign = c.foreign,
            kind = escape(kind),
            state = escape(&c.state),
            user = c.user.as_deref().map_or("-".into(), escape),
            since = utc(c.since),
            bin = c.bytes_in,
            bout = c.bytes_out,
            cmd = escape(&c.last_command),
        );
    }
    out.push_str("</table>\n");
}

fn counters(out: &mut String, report: &StatusReport) {
    let c = &report.counters;
    out.push_str(
        "<h2>Since start</h2>\n<div class=\"row\"><table id=\"logins\"><tr><th>Proto</th>\
         <th class=\"n\">Logins ok</th><th class=\"n\">Logins failed</th></tr>\n",
    );
    let served = |proto: &str| report.listeners.iter().any(|l| l.proto == proto);
    for l in c.logins.iter().filter(|l| served(&l.proto)) {
        let _ = writeln!(
            out,
            "<tr data-proto=\"{p}\"><td>{p}</td><td class=\"n\">{ok}</td><td class=\"n\">{failed}</td></tr>",
            p = escape(&l.proto),
            ok = l.ok,
            failed = l.failed
        );
    }
    let _ = write!(
        out,
        "</table>\n<table id=\"counters\"><tr><th>Counter</th><th class=\"n\">Total</th></tr>\
         <tr><td>Messages delivered</td><td class=\"n\">{}</td></tr>\
         <tr><td>Messages retrieved</td><td class=\"n\">{}</td></tr>\
         <tr><td>Index repairs</td><td class=\"n\">{}</td></tr>\
         <tr><td>TLS handshakes failed</td><td class=\"n\">{}</td></tr></table></div>\n",
        c.messages_delivered, c.messages_retrieved, c.index_repairs, c.tls_handshakes_failed
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
