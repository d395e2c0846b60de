//! The status listener as an admin meets it: `/status.json`, `roost status`, `roost who`,
//! `roost kick`, `/metrics`, the HTML page in a real browser, the password it asks for, and
//! the autoconfig documents mail clients fetch.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{base_config, roost_bin, LineClient, TestServer, PASSWORD};
use serde_json::Value;

const STATUS: &str = "[status]\nlisten = \"127.0.0.1:0\"\n";

/// One HTTP exchange: status code, head, body.
fn http(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> (u16, String, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"),
    )
}

fn status_json(server: &TestServer) -> Value {
    let (code, _, body) = get(server.addr("status"), "/status.json", "");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Runs `roost ARGS` and returns its output.
fn roost(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(roost_bin());
    command.args(args).env_remove("ROOST_PASSWORD");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn roost_ok(args: &[&str]) -> String {
    let out = roost(args, &[]);
    assert!(out.status.success(), "roost {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn url(server: &TestServer) -> String {
    format!("http://{}", server.addr("status"))
}

fn config_path(server: &TestServer) -> String {
    server.dir.path().join("roost.toml").display().to_string()
}

/// Logins of a protocol from the JSON counters, `(ok, failed)`.
fn logins(report: &Value, proto: &str) -> (u64, u64) {
    let row = report["counters"]["logins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["proto"] == proto)
        .unwrap();
    (row["ok"].as_u64().unwrap(), row["failed"].as_u64().unwrap())
}

/// Polls until `check` holds for the report (sessions end asynchronously).
fn eventually(server: &TestServer, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = status_json(server);
        if check(&report) {
            return report;
        }
        assert!(Instant::now() < deadline, "never {what}: {report:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn status_json_and_roost_status_list_exactly_the_listeners_and_sessions() {
    // A fixed status port, so `roost status -c` finds it in the config; on a loopback address
    // no other test binds, so no parallel test can take the port meanwhile.
    let port = std::net::TcpListener::bind("127.0.0.8:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status = format!("[status]\nlisten = \"127.0.0.8:{port}\"\n");
    let server = TestServer::start(&base_config(&["imap", "pop3"], &status));
    let mut imap = LineClient::connect(server.addr("imap"));
    imap.line();
    imap.cmd(&format!("a1 LOGIN plain \"{PASSWORD}\""), "a1 OK");
    let mut pop = LineClient::connect(server.addr("pop3"));
    pop.line();
    pop.cmd("USER sha256", "+OK");

    let report = status_json(&server);
    let mut listeners: Vec<(String, String, String, String)> = report["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let field = |k: &str| l[k].as_str().unwrap().to_string();
            (field("proto"), field("local"), field("state"), field("tls"))
        })
        .collect();
    listeners.sort();
    let expected = |proto: &str, tls: &str| {
        let addr = server.addr(proto).to_string();
        (
            proto.to_string(),
            addr,
            "LISTEN".to_string(),
            tls.to_string(),
        )
    };
    assert_eq!(
        listeners,
        vec![
            expected("imap", "STARTTLS"),
            expected("pop3", "STARTTLS"),
            expected("status", "none"),
        ]
    );
    let sessions = report["connections"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{report:#}");
    let session = |proto: &str| sessions.iter().find(|s| s["proto"] == proto).unwrap();
    let logged_in = session("imap");
    assert_eq!(logged_in["state"], "AUTHENTICATED");
    assert_eq!(logged_in["user"], "plain");
    assert_eq!(logged_in["local"], server.addr("imap").to_string());
    assert_eq!(logged_in["foreign"], imap.local_addr().to_string());
    assert_eq!(logged_in["last_command"], "LOGIN");
    let anonymous = session("pop3");
    assert_eq!(anonymous["state"], "ESTABLISHED");
    assert_eq!(anonymous["user"], Value::Null, "no user before login");
    assert_eq!(anonymous["foreign"], pop.local_addr().to_string());
    let body = serde_json::to_string(&report).unwrap();
    assert!(!body.contains(PASSWORD), "the page never shows a password");
    assert_eq!(report["server"]["storage"], "maildir");
    assert_eq!(report["server"]["config"], config_path(&server));

    // The same, as the admin's netstat-style table, found through the config file.
    let table = roost_ok(&["status", "-c", &config_path(&server)]);
    let row = |proto: &str, addr: String| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{proto} ")) && l.contains(&addr))
            .unwrap_or_else(|| panic!("no {proto} row with {addr} in:\n{table}"))
            .to_string()
    };
    assert!(row("imap", server.addr("imap").to_string()).contains("LISTEN"));
    assert!(row("pop3", server.addr("pop3").to_string()).contains("LISTEN"));
    let imap_row = row("imap", imap.local_addr().to_string());
    assert!(
        imap_row.contains("AUTHENTICATED") && imap_row.contains(" plain "),
        "{imap_row}"
    );
    let pop_row = row("pop3", pop.local_addr().to_string());
    assert!(
        pop_row.contains("ESTABLISHED") && !pop_row.contains("sha256"),
        "{pop_row}"
    );
    assert_eq!(table.matches("LISTEN").count(), 3, "{table}");

    // Counters move after a failed and a successful login.
    assert_eq!(logins(&report, "pop3"), (0, 0));
    assert_eq!(logins(&report, "imap"), (1, 0));
    pop.cmd("PASS wrong", "-ERR");
    let report = status_json(&server);
    assert_eq!(logins(&report, "pop3"), (0, 1));
    pop.cmd("USER sha256", "+OK");
    pop.cmd(&format!("PASS {PASSWORD}"), "+OK");
    let report = eventually(&server, "pop3 login counted", |r| {
        logins(r, "pop3") == (1, 1)
    });
    let pop_session = report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["proto"] == "pop3")
        .unwrap()
        .clone();
    assert_eq!(pop_session["user"], "sha256");
    assert_eq!(pop_session["state"], "AUTHENTICATED");
    let (code, head, metrics) = get(server.addr("status"), "/metrics", "");
    assert_eq!(code, 200);
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    for line in [
        "roost_logins_total{proto=\"pop3\",result=\"ok\"} 1",
        "roost_logins_total{proto=\"pop3\",result=\"failed\"} 1",
        "roost_connections{proto=\"imap\",state=\"authenticated\"} 1",
        "# TYPE roost_index_repairs_total counter",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
}

/// SELECTED, IDLE and the byte counts show in both process models: in one process the session
/// sets them; as root the worker that holds the plain connection reports them to the login
/// process (at most a second late).
#[test]
fn imap_sessions_show_their_selected_mailbox_idle_and_last_command() {
    let status = "[status]\nlisten = \"127.0.0.1:0\"\n";
    let server = TestServer::start(&base_config(&["imap"], status));
    let mut imap = LineClient::connect(server.addr("imap"));
    imap.line();
    imap.cmd(&format!("a1 LOGIN plain \"{PASSWORD}\""), "a1 OK");
    // An APPEND literal that looks like commands must not be taken for them.
    let body = "x1 SELECT Trash\r\n";
    imap.send(&format!(
        "a2 APPEND Drafts {{{}+}}\r\n{body}\r\n",
        body.len()
    ));
    imap.until("a2 OK");
    imap.cmd("a3 SELECT INBOX", "a3 OK");
    let session = |report: &Value| report["connections"][0].clone();
    let report = eventually(&server, "SELECTED INBOX", |r| {
        session(r)["state"] == "SELECTED INBOX"
    });
    assert_eq!(session(&report)["last_command"], "SELECT");
    let bytes = |report: &Value, way: &str| session(report)[way].as_u64().unwrap();
    let (bytes_in, bytes_out) = (bytes(&report, "bytes_in"), bytes(&report, "bytes_out"));
    assert!(bytes_in > 40 && bytes_out > 100, "{report:#}");
    imap.cmd("a4 IDLE", "+ ");
    eventually(&server, "IDLE", |r| session(r)["state"] == "IDLE");
    imap.cmd("DONE", "a4 OK");
    eventually(&server, "back to SELECTED after DONE", |r| {
        session(r)["state"] == "SELECTED INBOX"
    });
    imap.cmd("a5 UID FETCH 1:* (FLAGS)", "a5 OK");
    eventually(
        &server,
        "FETCH as last command, and its bytes counted",
        |r| {
            session(r)["last_command"] == "FETCH"
                && bytes(r, "bytes_in") > bytes_in
                && bytes(r, "bytes_out") > bytes_out
        },
    );
    imap.cmd("a6 CLOSE", "a6 OK");
    eventually(&server, "AUTHENTICATED after CLOSE", |r| {
        session(r)["state"] == "AUTHENTICATED"
    });
}

#[test]
fn who_lists_logged_in_users_and_kick_ends_only_their_sessions() {
    let server = TestServer::start(&base_config(&["imap", "pop3"], STATUS));
    let mut plain: Vec<LineClient> = (0..2)
        .map(|i| {
            let mut c = LineClient::connect(server.addr("imap"));
            c.line();
            c.cmd(
                &format!("a{i} LOGIN plain \"{PASSWORD}\""),
                &format!("a{i} OK"),
            );
            c
        })
        .collect();
    let mut other = LineClient::connect(server.addr("pop3"));
    other.line();
    other.cmd("USER sha512", "+OK");
    other.cmd(&format!("PASS {PASSWORD}"), "+OK");
    let mut anonymous = LineClient::connect(server.addr("imap"));
    anonymous.line();

    let who = roost_ok(&["who", "--url", &url(&server)]);
    let lines: Vec<Vec<&str>> = who
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["username", "#", "proto", "(ips)"], "{who}");
    assert!(
        lines.contains(&vec!["plain", "2", "imap", "(127.0.0.1)"]),
        "{who}"
    );
    assert!(
        lines.contains(&vec!["sha512", "1", "pop3", "(127.0.0.1)"]),
        "{who}"
    );
    assert_eq!(lines.len(), 3, "only logged-in users:\n{who}");

    let kicked = roost_ok(&["kick", "--url", &url(&server), "plain"]);
    assert_eq!(kicked, "plain: 2 sessions kicked\n");
    for client in &mut plain {
        // One process: the session's goodbye; worker mode: the login process shuts the
        // connection down (plain) or ends its relay (TLS).
        let rest = client.rest();
        assert!(rest.is_empty() || rest.starts_with("* BYE"), "{rest:?}");
    }
    let report = eventually(&server, "plain's sessions gone", |r| {
        r["connections"].as_array().unwrap().len() == 2
    });
    let users: Vec<&Value> = report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["user"])
        .collect();
    assert!(users.contains(&&Value::from("sha512")) && users.contains(&&Value::Null));
    other.cmd("NOOP", "+OK");
    anonymous.cmd("n1 NOOP", "n1 OK");
    assert_eq!(
        roost_ok(&["kick", "--url", &url(&server), "plain"]),
        "plain: no sessions\n"
    );
    server.wait_for_log("status: kicked 2 session(s) of user=<plain>");
}

#[test]
fn the_page_asks_for_a_password_when_configured_and_roost_status_sends_it() {
    let hash =
        String::from_utf8(roost(&["pw", "-s", "SHA256-CRYPT", "-p", "admin pw"], &[]).stdout)
            .unwrap();
    let extra = format!(
        "[status]\nlisten = \"127.0.0.1:0\"\nadmin_password = \"{}\"\nadmin_users = [\"sha512\"]\n",
        hash.trim()
    );
    let server = TestServer::start(&base_config(&["imap"], &extra));
    let basic = |user: &str, password: &str| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Authorization: Basic {token}\r\n")
    };
    let addr = server.addr("status");
    let (code, head, _) = get(addr, "/status.json", "");
    assert_eq!(code, 401);
    assert!(
        head.contains("WWW-Authenticate: Basic realm=\"roost status\""),
        "{head}"
    );
    assert_eq!(get(addr, "/", &basic("admin", "wrong")).0, 401);
    assert_eq!(
        get(addr, "/metrics", &basic("plain", PASSWORD)).0,
        401,
        "not an admin"
    );
    assert_eq!(
        get(addr, "/status.json", &basic("admin", "admin pw")).0,
        200
    );
    assert_eq!(
        get(addr, "/status.json", &basic("sha512", PASSWORD)).0,
        200,
        "passdb admin"
    );
    server.wait_for_log("status: Aborted admin login (Authentication failed): user=<plain>");

    let out = roost(&["status", "--url", &url(&server)], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("asks for a password: use --user NAME"),
        "{err}"
    );
    let args = ["status", "--url", &url(&server), "--user", "admin"];
    let out = roost(&args, &[("ROOST_PASSWORD", "admin pw")]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("LISTEN"));
    let out = roost(&args, &[("ROOST_PASSWORD", "nope")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused that user name or password"));
    let out = roost(&["kick", "--url", &url(&server), "plain"], &[]);
    assert!(!out.status.success(), "kick needs the password too");
}

#[test]
fn bad_requests_get_http_errors_and_the_page_answers_only_to_its_address() {
    let server = TestServer::start(&base_config(&["imap"], STATUS));
    let addr = server.addr("status");
    assert_eq!(get(addr, "/nope", "").0, 404);
    assert_eq!(get(addr, "/kick", "").0, 405);
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "x".repeat(20_000));
    assert_eq!(http(addr, &huge).0, 431);
    assert_eq!(http(addr, "NONSENSE\r\n\r\n").0, 400);
    // DNS rebinding: a page served from evil.example must not read this one.
    let (code, _, _) = http(
        addr,
        "GET /status.json HTTP/1.1\r\nHost: evil.example:8025\r\n\r\n",
    );
    assert_eq!(code, 421);
    // A cross-site form cannot kick: only JSON is accepted.
    let form = "POST /kick HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\nuser=plain";
    assert_eq!(http(addr, form).0, 415);
    // Browsers get HTML, curl the text table.
    let (_, head, html) = get(addr, "/", "Accept: text/html\r\n");
    assert!(head.contains("Content-Type: text/html") && html.contains("<table id=\"listeners\">"));
    let (_, head, text) = get(addr, "/", "Accept: */*\r\n");
    assert!(head.contains("Content-Type: text/plain") && text.contains("Listeners\nProto"));
}

#[test]
fn storage_repairs_made_in_sessions_are_counted() {
    let server = TestServer::start(&base_config(&["imap"], STATUS));
    let repairs = |r: &Value| r["counters"]["index_repairs"].as_u64().unwrap();
    assert_eq!(repairs(&status_json(&server)), 0);
    let creds = ["--user", "plain", "--password", PASSWORD];
    common::mail_client_ok(
        "imap",
        server.addr("imap"),
        &[&creds[..], &["--append", "Subject: x\\n\\ny\\n"]].concat(),
    );
    // Someone garbles the uidlist; the next session repairs it, and the page counts it.
    std::fs::write(server.mail_root().join("plain/dovecot-uidlist"), b"garbage").unwrap();
    std::fs::remove_file(server.mail_root().join("plain/roost.index")).unwrap();
    common::mail_client_ok("imap", server.addr("imap"), &creds);
    server.wait_for_log("dovecot-uidlist is corrupt");
    let report = eventually(&server, "repairs counted", |r| repairs(r) > 0);
    assert_eq!(repairs(&report), 2);
}

/// The sum over the hour of a `history` series (`group` is `connections`, `logins` or
/// `delivered`), after checking it has one count per minute.
fn hour_total(report: &Value, group: &str, name: &str) -> u64 {
    let series = report["history"][group]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {group} series {name}: {report:#}"));
    let per_minute = series["per_minute"].as_array().unwrap();
    assert_eq!(per_minute.len(), 60, "one slot per minute of the hour");
    per_minute.iter().map(|n| n.as_u64().unwrap()).sum()
}

#[test]
fn the_last_hour_is_charted_per_minute_in_the_json_and_the_page() {
    let server = TestServer::start(&base_config(
        &["imap", "smtp"],
        &format!("{STATUS}[smtp]\nlocal_domains = [\"example.com\"]\n"),
    ));
    // Two good logins and a bad one, on three IMAP connections.
    for (tag, password, verdict) in [
        ("a", PASSWORD, "a OK"),
        ("b", PASSWORD, "b OK"),
        ("c", "wrong", "c NO"),
    ] {
        let mut imap = LineClient::connect(server.addr("imap"));
        imap.line();
        imap.cmd(&format!("{tag} LOGIN plain \"{password}\""), verdict);
        imap.cmd("z LOGOUT", "z OK");
    }
    // One message delivered by inbound SMTP.
    let mut smtp = LineClient::connect(server.addr("smtp"));
    assert!(smtp.line().starts_with("220 "));
    smtp.cmd("HELO client.test", "250 ");
    smtp.cmd("MAIL FROM:<someone@far.example>", "250 ");
    smtp.cmd("RCPT TO:<plain@example.com>", "250 ");
    smtp.cmd("DATA", "354 ");
    smtp.cmd("Subject: hi\r\n\r\nhello\r\n.", "250 ");
    smtp.cmd("QUIT", "221 ");

    let report = eventually(&server, "the hour shows the traffic", |r| {
        hour_total(r, "delivered", "delivered") == 1 && hour_total(r, "logins", "failed") == 1
    });
    assert_eq!(hour_total(&report, "logins", "ok"), 2);
    assert_eq!(hour_total(&report, "connections", "imap"), 3);
    assert_eq!(hour_total(&report, "connections", "smtp"), 1);
    // Only the protocols served get a connection series; the hour's sums match the totals.
    let names: Vec<&str> = report["history"]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["imap", "smtp"]);
    assert_eq!(logins(&report, "imap"), (2, 1));
    assert_eq!(report["counters"]["messages_delivered"], 1);
    let (_, _, metrics) = get(server.addr("status"), "/metrics", "");
    assert!(
        metrics
            .lines()
            .any(|l| l == "roost_connections_accepted_total{proto=\"imap\"} 3"),
        "{metrics}"
    );
    // The last slot is the current minute.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let current = report["history"]["current_minute"].as_u64().unwrap();
    assert!(
        current % 60 == 0 && current <= now && now - current < 120,
        "{current} vs {now}"
    );

    // The page draws the same hour as three inline SVG charts, with no script anywhere.
    let (code, _, html) = get(server.addr("status"), "/", "Accept: text/html\r\n");
    assert_eq!(code, 200);
    assert_eq!(html.matches("<svg ").count(), 3, "{html}");
    for id in ["chart-connections", "chart-logins", "chart-delivered"] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "{id} missing: {html}"
        );
    }
    assert!(!html.contains("<script"));
    for series in ["imap", "smtp", "ok", "failed", "delivered"] {
        assert!(
            html.contains(&format!("<polyline data-series=\"{series}\"")),
            "no line for {series}: {html}"
        );
    }
    assert!(
        html.contains("ok 2</span>") && html.contains("failed 1</span>"),
        "{html}"
    );
    assert!(
        html.contains("delivered 1</span>") && html.contains("imap 3</span>"),
        "{html}"
    );
}

/// Debian's chromium, if installed.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn a_real_browser_renders_the_listener_rows() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: .ci/setup installs Debian's chromium"
        );
        eprintln!("SKIPPED a_real_browser_renders_the_listener_rows: chromium is not installed (run .ci/setup as root to install it)");
        return;
    };
    let server = TestServer::start(&base_config(&["imap", "pop3s"], STATUS));
    let mut imap = LineClient::connect(server.addr("imap"));
    imap.line();
    imap.cmd(&format!("a1 LOGIN plain \"{PASSWORD}\""), "a1 OK");
    let screenshot = server.dir.path().join("status-page.png");
    let profile = server.dir.path().join("chromium-profile");
    let started = Instant::now();
    let out = Command::new("timeout")
        .arg("60")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg("--window-size=1280,800")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--dump-dom")
        .arg(url(&server) + "/")
        .env("HOME", server.dir.path())
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chromium failed: {out:?}");
    let elapsed = started.elapsed();
    for (proto, tls) in [
        ("imap", "STARTTLS"),
        ("pop3s", "implicit"),
        ("status", "none"),
    ] {
        let row = format!(
            "<tr class=\"listener\" data-proto=\"{proto}\"><td>{proto}</td><td>{}</td><td class=\"st LISTEN\">LISTEN</td><td>{tls}</td>",
            server.addr(proto)
        );
        assert!(dom.contains(&row), "{row} in:\n{dom}");
    }
    assert!(
        dom.contains(&format!("<td>{}</td>", imap.local_addr())),
        "{dom}"
    );
    assert!(
        dom.contains("AUTHENTICATED</td><td>no</td><td>plain</td>"),
        "{dom}"
    );
    // The last hour's charts survive the page's Content-Security-Policy as inline SVG.
    assert_eq!(dom.matches("<svg ").count(), 3, "{dom}");
    assert!(
        dom.contains("<polyline data-series=\"imap\"") && dom.contains("imap 1</span>"),
        "{dom}"
    );
    let png = std::fs::read(&screenshot).expect("chromium saved a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    // Keep a copy beyond the temp dir, for a human to look at.
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let kept = match std::fs::write(&kept, &png) {
        Ok(()) => kept.display().to_string(),
        Err(e) => format!("not kept ({e})"),
    };
    eprintln!("chromium rendered the page in {elapsed:?}; screenshot: {kept}");
}

#[test]
fn autoconfig_documents_describe_the_listeners_roost_really_has() {
    let extra = format!(
        "{STATUS}[autoconfig]\nlisten = \"127.0.0.1:0\"\nhostname = \"mail.example.com\"\nusername = \"localpart\"\n"
    );
    let server = TestServer::start(&base_config(
        &["imap", "imaps", "pop3s", "submission"],
        &extra,
    ));
    let port = |proto: &str| server.addr(proto).port().to_string();
    let auto = server.addr("autoconfig");
    // Thunderbird, both places it looks.
    for path in [
        "/mail/config-v1.1.xml?emailaddress=alice%40example.org",
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.org",
    ] {
        let (code, head, xml) = get(auto, path, "");
        assert_eq!(code, 200, "{path}: {xml}");
        assert!(head.contains("Content-Type: application/xml"));
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let provider = doc
            .descendants()
            .find(|n| n.has_tag_name("emailProvider"))
            .unwrap();
        assert_eq!(provider.attribute("id"), Some("example.org"));
        let servers: Vec<(String, String, String, String, String)> = doc
            .descendants()
            .filter(|n| n.has_tag_name("incomingServer") || n.has_tag_name("outgoingServer"))
            .map(|n| {
                let child = |tag: &str| {
                    n.children()
                        .find(|c| c.has_tag_name(tag))
                        .and_then(|c| c.text())
                        .unwrap_or_default()
                        .to_string()
                };
                (
                    n.attribute("type").unwrap_or_default().to_string(),
                    child("hostname"),
                    child("port"),
                    child("socketType"),
                    child("username"),
                )
            })
            .collect();
        let server_row = |kind: &str, proto: &str, socket: &str| {
            let host = "mail.example.com".to_string();
            (
                kind.into(),
                host,
                port(proto),
                socket.into(),
                "%EMAILLOCALPART%".into(),
            )
        };
        assert_eq!(
            servers,
            vec![
                server_row("imap", "imaps", "SSL"),
                server_row("imap", "imap", "STARTTLS"),
                server_row("pop3", "pop3s", "SSL"),
                server_row("smtp", "submission", "STARTTLS"),
            ],
            "{xml}"
        );
    }
    // Outlook's POX Autodiscover.
    let request = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>alice@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>";
    let (code, _, xml) = http(
        auto,
        &format!(
            "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.org\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{request}",
            request.len()
        ),
    );
    assert_eq!(code, 200, "{xml}");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let protocols: Vec<Vec<String>> = doc
        .descendants()
        .filter(|n| n.has_tag_name("Protocol"))
        .map(|n| {
            ["Type", "Server", "Port", "Encryption", "LoginName"]
                .iter()
                .map(|tag| {
                    n.children()
                        .find(|c| c.has_tag_name(*tag))
                        .and_then(|c| c.text())
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .collect();
    let row = |kind: &str, proto: &str, encryption: &str| {
        vec![
            kind.to_string(),
            "mail.example.com".into(),
            port(proto),
            encryption.into(),
            "alice".into(),
        ]
    };
    assert_eq!(
        protocols,
        vec![
            row("IMAP", "imaps", "SSL"),
            row("POP3", "pop3s", "SSL"),
            row("SMTP", "submission", "TLS"),
        ],
        "{xml}"
    );
    // The status page lists the autoconfig listener as what it is.
    let report = status_json(&server);
    let listener = report["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["proto"] == "autoconfig")
        .unwrap()
        .clone();
    assert_eq!(listener["local"], auto.to_string());
}

#[test]
fn failed_tls_handshakes_are_counted_implicit_and_starttls() {
    let server = TestServer::start(&base_config(&["imap", "imaps"], STATUS));
    let failed = |r: &Value| r["counters"]["tls_handshakes_failed"].as_u64().unwrap();
    assert_eq!(failed(&status_json(&server)), 0);
    // A plaintext client on the implicit-TLS port.
    let mut plain = LineClient::connect(server.addr("imaps"));
    plain.send("a1 LOGIN plain x\r\n");
    let answer = plain.rest();
    assert!(!answer.contains("OK"), "a TLS alert, no IMAP: {answer:?}");
    eventually(&server, "implicit TLS failure counted", |r| failed(r) == 1);
    // A client that asks for STARTTLS and then does not speak TLS.
    let mut imap = LineClient::connect(server.addr("imap"));
    imap.line();
    imap.cmd("s1 STARTTLS", "s1 OK");
    imap.send("not a ClientHello\r\n");
    imap.rest();
    eventually(&server, "STARTTLS failure counted", |r| failed(r) == 2);
}
