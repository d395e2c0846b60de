//! The server's edge: only configured protocols listen, limits, idle timeouts, and graceful
//! shutdown on SIGTERM. (The status page has its own file, `status.rs`.)

mod common;

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{base_config, LineClient, TestServer, PASSWORD};

/// Ports in LISTEN state on `ip`, from `ss -ltn`.
fn listening_ports(ip: &str) -> Vec<u16> {
    let out = Command::new("ss")
        .args(["-ltnH"])
        .output()
        .expect("ss (iproute2) is installed");
    let prefix = format!("{ip}:");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .nth(3)?
                .strip_prefix(&prefix)?
                .parse()
                .ok()
        })
        .collect()
}

/// An address nothing listens on right now, on a loopback address no other test binds, so
/// no parallel test can take the port between this check and its use.
const QUIET_IP: &str = "127.0.0.9";

fn free_port() -> u16 {
    std::net::TcpListener::bind((QUIET_IP, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn only_the_configured_protocols_listen() {
    // Every protocol gets an address, but only imaps and pop3 are listed in `protocols`.
    let unlisted: Vec<(&str, u16)> = ["imap", "pop3s", "submission", "submissions"]
        .iter()
        .map(|p| (*p, free_port()))
        .collect();
    let mut config = base_config(&["imaps", "pop3"], "");
    for (protocol, port) in &unlisted {
        config = config.replace(
            "[mail]",
            &format!("{protocol} = \"{QUIET_IP}:{port}\"\n[mail]"),
        );
    }
    let server = TestServer::start(&config);
    assert_eq!(server.addrs.len(), 2, "{:?}", server.addrs);
    let listening = listening_ports("127.0.0.1");
    for protocol in ["imaps", "pop3"] {
        assert!(
            listening.contains(&server.addr(protocol).port()),
            "{protocol} listens"
        );
    }
    let quiet = listening_ports(QUIET_IP);
    for (protocol, port) in &unlisted {
        assert!(
            !quiet.contains(port),
            "{protocol} is not listed but listens on {port}"
        );
        assert!(
            TcpStream::connect((QUIET_IP, *port)).is_err(),
            "{protocol} accepts on {port}"
        );
    }
    let mut pop = LineClient::connect(server.addr("pop3"));
    assert_eq!(pop.line(), "+OK roost ready.\r\n");
}

#[test]
fn sigterm_says_goodbye_and_exits_zero_within_two_seconds() {
    let mut server = TestServer::start(&base_config(&["imap", "pop3", "submission"], ""));
    let mut imap = LineClient::connect(server.addr("imap"));
    imap.line();
    let mut logged_in = LineClient::connect(server.addr("imap"));
    logged_in.line();
    logged_in.cmd(&format!("a1 LOGIN plain \"{PASSWORD}\""), "a1 OK");
    let mut pop = LineClient::connect(server.addr("pop3"));
    pop.line();
    let mut smtp = LineClient::connect(server.addr("submission"));
    smtp.line();
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(2))
        .unwrap_or_else(|| panic!("not exited within 2 s:\n{}", server.log_text()));
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(imap.rest(), "* BYE Server shutting down.\r\n");
    assert_eq!(logged_in.rest(), "* BYE Server shutting down.\r\n");
    assert_eq!(pop.rest(), "-ERR [SYS/TEMP] Server shutting down.\r\n");
    assert_eq!(smtp.rest(), "421 4.3.2 Server shutting down\r\n");
}

#[test]
fn per_ip_connection_limit_refuses_politely() {
    let server = TestServer::start(&base_config(
        &["imap"],
        "[limits]\nmax_connections_per_ip = 2\n",
    ));
    let mut a = LineClient::connect(server.addr("imap"));
    let mut b = LineClient::connect(server.addr("imap"));
    assert!(a.line().starts_with("* OK"));
    assert!(b.line().starts_with("* OK"));
    let mut c = LineClient::connect(server.addr("imap"));
    assert_eq!(
        c.rest(),
        "* BYE [UNAVAILABLE] Too many connections from your address\r\n"
    );
    drop(a);
    // The slot frees once the first connection's task has ended.
    let mut admitted = false;
    for _ in 0..50 {
        let mut d = LineClient::connect(server.addr("imap"));
        if d.line().starts_with("* OK") {
            admitted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(admitted, "a freed slot is reused");
    b.cmd("b1 NOOP", "b1 OK");
}

#[test]
fn idle_clients_are_logged_out_in_their_protocols_words() {
    let limits = "[limits]\nimap_idle_timeout_secs = 1\npop3_idle_timeout_secs = 1\nsmtp_idle_timeout_secs = 1\n";
    let server = TestServer::start(&base_config(&["imap", "pop3", "submission"], limits));
    let mut imap = LineClient::connect(server.addr("imap"));
    imap.line();
    let mut logged_in = LineClient::connect(server.addr("imap"));
    logged_in.line();
    logged_in.cmd(&format!("a1 LOGIN plain \"{PASSWORD}\""), "a1 OK");
    let mut pop = LineClient::connect(server.addr("pop3"));
    pop.line();
    let mut smtp = LineClient::connect(server.addr("submission"));
    smtp.line();
    assert_eq!(imap.rest(), "* BYE Disconnected for inactivity.\r\n");
    assert_eq!(logged_in.rest(), "* BYE Disconnected for inactivity.\r\n");
    assert_eq!(pop.rest(), "-ERR Disconnected for inactivity.\r\n");
    assert_eq!(smtp.rest(), "421 4.4.2 Timeout exceeded\r\n");
}

#[test]
fn bad_input_before_login_gets_clear_errors_and_the_session_survives() {
    let server = TestServer::start(&base_config(&["imap", "pop3", "submission"], ""));
    let mut imap = LineClient::connect(server.addr("imap"));
    imap.line();
    assert_eq!(
        imap.cmd("a1 FROBNICATE", "a1"),
        vec!["a1 BAD Unknown command FROBNICATE\r\n"]
    );
    assert_eq!(
        imap.cmd("a2 SELECT INBOX", "a2"),
        vec!["a2 BAD SELECT is not allowed before login.\r\n"]
    );
    assert_eq!(
        imap.cmd("a3 LOGIN", "a3"),
        vec!["a3 BAD Error in IMAP command LOGIN: invalid arguments\r\n"]
    );
    assert_eq!(
        imap.cmd("a4 APPEND INBOX {999999999}", "a4"),
        vec!["a4 BAD Literal of 999999999 bytes exceeds the limit of 4096 bytes\r\n"]
    );
    imap.cmd("a5 NOOP", "a5 OK");

    let mut pop = LineClient::connect(server.addr("pop3"));
    pop.line();
    assert_eq!(
        pop.cmd("STAT", "-ERR"),
        vec!["-ERR STAT is not allowed before login.\r\n"]
    );
    assert_eq!(
        pop.cmd("XYZZY", "-ERR"),
        vec!["-ERR Unknown command: XYZZY\r\n"]
    );
    let long = "A".repeat(10_000);
    assert_eq!(
        pop.cmd(&long, "-ERR"),
        vec!["-ERR Line too long (limit 8192 bytes).\r\n"]
    );
    assert_eq!(
        pop.cmd("PASS x", "-ERR"),
        vec!["-ERR No user name given: send USER first.\r\n"]
    );
    pop.cmd("CAPA", ".");

    let mut smtp = LineClient::connect(server.addr("submission"));
    smtp.line();
    assert_eq!(
        smtp.cmd("MAIL FROM:<a@b.example>", "5"),
        vec!["530 5.7.0 Authentication required\r\n"]
    );
    assert_eq!(
        smtp.cmd("BLAH", "5"),
        vec!["500 5.5.2 Command unrecognized: BLAH\r\n"]
    );
    assert_eq!(smtp.cmd("QUIT", "221"), vec!["221 2.0.0 Bye\r\n"]);
}

#[test]
fn a_client_sending_only_garbage_is_disconnected() {
    let server = TestServer::start(&base_config(&["imap", "pop3"], ""));
    let mut imap = LineClient::connect(server.addr("imap"));
    imap.line();
    for i in 1..10 {
        assert!(imap
            .cmd(&format!("g{i} NONSENSE"), "g")
            .last()
            .unwrap()
            .contains("BAD"));
    }
    imap.send("g10 NONSENSE\r\n");
    assert_eq!(imap.rest(), "* BYE Too many invalid IMAP commands.\r\n");
    let mut pop = LineClient::connect(server.addr("pop3"));
    pop.line();
    for _ in 1..10 {
        pop.cmd("NONSENSE", "-ERR");
    }
    pop.send("NONSENSE\r\n");
    assert_eq!(
        pop.rest(),
        "-ERR Unknown command: NONSENSE\r\n-ERR Too many invalid commands.\r\n"
    );
}
