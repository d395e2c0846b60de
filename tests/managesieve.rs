//! ManageSieve (RFC 5804) over real sockets: the Perl `sieve-connect` client (which nobody
//! here wrote) uploads, lists, activates, downloads and deletes scripts through STARTTLS; raw
//! dialogues check the responses byte for byte, and where the scripts land beside the mail.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::{engine::general_purpose::STANDARD, Engine};
use common::{base_config, LineClient, TestServer, PASSWORD};

/// How long one sieve-connect run may take.
const CLIENT_LIMIT_SECS: &str = "30";

/// Small limits, so the limit replies are easy to reach.
const LIMITS: &str = "[sieve]\nmax_scripts = 2\nmax_script_size = 1000\n";

/// Runs sieve-connect against `server` as `plain`, the password on its stdin.
fn sieve_connect(server: &TestServer, args: &[&str]) -> Output {
    let port = server.addr("sieve").port().to_string();
    let mut child = Command::new("timeout")
        .args(["-k", "5", CLIENT_LIMIT_SECS, "sieve-connect"])
        .args(["--server", "127.0.0.1", "--port", &port, "--user", "plain"])
        .args(["--passwordfd", "0", "--notlsverify"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("coreutils' timeout runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    match out.status.code() {
        Some(124) | Some(137) => panic!("sieve-connect {args:?} did not finish in time"),
        Some(126) | Some(127) => panic!(
            "sieve-connect is not installed: run .ci/setup as root (it installs the test clients)"
        ),
        _ => out,
    }
}

/// As [`sieve_connect`], for a run that must succeed; its standard output.
fn sieve_connect_ok(server: &TestServer, args: &[&str]) -> String {
    let out = sieve_connect(server, args);
    assert!(
        out.status.success(),
        "sieve-connect {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sieve_dir(server: &TestServer) -> std::path::PathBuf {
    server.mail_root().join("plain").join("sieve")
}

#[test]
fn sieve_connect_uploads_lists_activates_downloads_and_deletes() {
    let server = TestServer::start(&base_config(&["sieve"], LIMITS));
    let work = tempfile::tempdir().unwrap();
    let vacation = work.path().join("vacation");
    let script = "require [\"fileinto\"];\r\nif header :contains \"subject\" \"[list]\" {\r\n  fileinto \"Lists\";\r\n}\r\n";
    std::fs::write(&vacation, script).unwrap();
    let path = |p: &Path| p.display().to_string();

    sieve_connect_ok(&server, &["--upload", "--localsieve", &path(&vacation)]);
    let listed = sieve_connect_ok(&server, &["--list"]);
    assert_eq!(listed.trim(), "\"vacation\"");
    assert_eq!(
        std::fs::read(sieve_dir(&server).join("vacation.sieve")).unwrap(),
        script.as_bytes(),
        "the script is stored beside the mail, byte for byte"
    );

    sieve_connect_ok(&server, &["--activate", "--remotesieve", "vacation"]);
    let listed = sieve_connect_ok(&server, &["--list", "--authmech", "LOGIN"]);
    assert_eq!(listed.trim(), "\"vacation\" ACTIVE", "LOGIN works too");

    let copy = work.path().join("copy");
    sieve_connect_ok(
        &server,
        &[
            "--download",
            "--remotesieve",
            "vacation",
            "--localsieve",
            &path(&copy),
        ],
    );
    assert_eq!(std::fs::read(&copy).unwrap(), script.as_bytes());

    let refused = sieve_connect(&server, &["--delete", "--remotesieve", "vacation"]);
    assert!(!refused.status.success(), "the active script stays");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("NO (ACTIVE)"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    sieve_connect_ok(&server, &["--deactivate"]);
    sieve_connect_ok(&server, &["--delete", "--remotesieve", "vacation"]);
    assert_eq!(sieve_connect_ok(&server, &["--list"]).trim(), "");
    assert!(!sieve_dir(&server).join("vacation.sieve").exists());
    server.wait_for_log("managesieve-login: Login: user=<plain>, method=LOGIN");
}

/// The capability lines every greeting starts with (before STARTTLS, plaintext allowed).
fn greeting_before_tls(sasl: &str) -> Vec<String> {
    let extensions = [
        "fileinto",
        "reject",
        "ereject",
        "envelope",
        "imap4flags",
        "body",
        "variables",
        "copy",
        "relational",
        "comparator-i;ascii-numeric",
        "subaddress",
        "regex",
        "vacation",
        "include",
        "date",
        "index",
        "vacation-seconds",
        "mailbox",
        "encoded-character",
    ]
    .join(" ");
    vec![
        "\"IMPLEMENTATION\" \"roost\"\r\n".into(),
        format!("\"SASL\" \"{sasl}\"\r\n"),
        format!("\"SIEVE\" \"{extensions}\"\r\n"),
        "\"STARTTLS\"\r\n".into(),
        "\"VERSION\" \"1.0\"\r\n".into(),
        "OK \"roost ManageSieve ready.\"\r\n".into(),
    ]
}

fn plain_login() -> String {
    let token = STANDARD.encode(format!("\0plain\0{PASSWORD}"));
    format!("AUTHENTICATE \"PLAIN\" \"{token}\"")
}

/// Sends a command whose last argument is the literal `body`; returns the reply lines up to
/// the final OK/NO.
fn with_literal(c: &mut LineClient, head: &str, body: &[u8]) -> Vec<String> {
    let head = if head.is_empty() {
        String::new()
    } else {
        format!("{head} ")
    };
    c.send(&format!("{head}{{{}+}}\r\n", body.len()));
    c.send_bytes(body);
    c.send("\r\n");
    until_final(c)
}

fn until_final(c: &mut LineClient) -> Vec<String> {
    let mut lines = Vec::new();
    for _ in 0..100 {
        let line = c.line();
        assert!(!line.is_empty(), "connection closed after {lines:?}");
        let done = ["OK", "NO", "BYE"].iter().any(|s| line.starts_with(s));
        lines.push(line);
        if done {
            return lines;
        }
    }
    panic!("no final response in {lines:?}");
}

fn run(c: &mut LineClient, command: &str) -> Vec<String> {
    c.send(&format!("{command}\r\n"));
    until_final(c)
}

#[test]
fn script_commands_answer_byte_exactly() {
    let server = TestServer::start(&base_config(&["sieve"], LIMITS));
    let mut c = LineClient::connect(server.addr("sieve"));
    assert_eq!(until_final(&mut c), greeting_before_tls("PLAIN LOGIN"));
    assert_eq!(
        run(&mut c, "LISTSCRIPTS"),
        ["NO \"LISTSCRIPTS is not allowed before login.\"\r\n"]
    );
    assert_eq!(run(&mut c, "FROB"), ["NO \"Unknown command FROB\"\r\n"]);
    // PLAIN without an initial response: an empty challenge, then the answer as a string.
    c.send("AUTHENTICATE \"PLAIN\"\r\n");
    assert_eq!(c.line(), "\"\"\r\n");
    assert_eq!(
        run(&mut c, "\"*\""),
        ["NO \"Authentication cancelled.\"\r\n"]
    );
    c.send("AUTHENTICATE \"PLAIN\"\r\n");
    assert_eq!(c.line(), "\"\"\r\n");
    let token = STANDARD.encode(format!("\0plain\0{PASSWORD}"));
    assert_eq!(
        with_literal(&mut c, "", token.as_bytes()),
        ["OK \"Logged in.\"\r\n"]
    );

    assert_eq!(
        run(&mut c, "HAVESPACE \"main\" 1000"),
        ["OK \"Putscript would succeed.\"\r\n"]
    );
    assert_eq!(
        run(&mut c, "HAVESPACE \"main\" 1001"),
        ["NO (QUOTA/MAXSIZE) \"Script is too large (the limit is 1000 bytes).\"\r\n"]
    );
    let broken = with_literal(&mut c, "PUTSCRIPT \"broken\"", b"keep;\xff\r\n");
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(broken[0].starts_with("NO \"line 1: "), "{broken:?}");
    assert!(broken[0].ends_with("\"\r\n"), "{broken:?}");
    // A typo is caught before the script is stored, with its line and the word at fault.
    let typo = with_literal(
        &mut c,
        "PUTSCRIPT \"typo\"",
        b"keep;\r\nfilinto \"Lists\";\r\n",
    );
    assert!(
        typo[0].starts_with("NO \"line 2: ") && typo[0].contains("filinto"),
        "{typo:?}"
    );
    let big = with_literal(&mut c, "PUTSCRIPT \"big\"", &[b'#'; 1001]);
    assert_eq!(
        big,
        ["NO (QUOTA/MAXSIZE) \"Script is too large (the limit is 1000 bytes).\"\r\n"]
    );
    assert_eq!(
        with_literal(&mut c, "PUTSCRIPT \"main\"", b"keep;"),
        ["OK \"Putscript completed.\"\r\n"]
    );
    assert_eq!(
        run(&mut c, "GETSCRIPT \"missing\""),
        ["NO (NONEXISTENT) \"There is no script named \\\"missing\\\".\"\r\n"]
    );
    assert_eq!(
        run(&mut c, "SETACTIVE \"main\""),
        ["OK \"Setactive completed.\"\r\n"]
    );
    assert_eq!(
        run(&mut c, "DELETESCRIPT \"main\""),
        ["NO (ACTIVE) \"Script \\\"main\\\" is active; deactivate it first.\"\r\n"]
    );
    assert_eq!(
        with_literal(&mut c, "PUTSCRIPT \"second\"", b"discard;"),
        ["OK \"Putscript completed.\"\r\n"]
    );
    assert_eq!(
        with_literal(&mut c, "PUTSCRIPT \"third\"", b"stop;"),
        ["NO (QUOTA/MAXSCRIPTS) \"Too many scripts (the limit is 2).\"\r\n"]
    );
    assert_eq!(
        run(&mut c, "RENAMESCRIPT \"main\" \"renamed\""),
        ["OK \"Renamescript completed.\"\r\n"]
    );
    assert_eq!(
        run(&mut c, "LISTSCRIPTS"),
        [
            "\"renamed\" ACTIVE\r\n",
            "\"second\"\r\n",
            "OK \"Listscripts completed.\"\r\n"
        ]
    );
    assert_eq!(
        run(&mut c, "GETSCRIPT \"renamed\""),
        ["{5}\r\n", "keep;\r\n", "OK \"Getscript completed.\"\r\n"]
    );
    assert_eq!(run(&mut c, "NOOP \"t1\""), ["OK (TAG \"t1\") \"Done\"\r\n"]);
    assert_eq!(run(&mut c, "LOGOUT"), ["OK \"Logout completed.\"\r\n"]);
    assert_eq!(c.rest(), "", "the server closes after LOGOUT");

    let dir = sieve_dir(&server);
    assert_eq!(std::fs::read(dir.join("renamed.sieve")).unwrap(), b"keep;");
    assert_eq!(
        std::fs::read_link(dir.join("active")).unwrap(),
        Path::new("renamed.sieve")
    );
}

/// Only 127.0.0.3 is trusted here, so our 127.0.0.1 connections count as remote.
const UNTRUSTED: &str = "[auth]\npassdb = [\"passwd-file:users\"]\nfailure_delay_ms = 300\ntrusted_networks = [\"127.0.0.3/32\"]\n";

#[test]
fn plaintext_authentication_waits_for_starttls_from_untrusted_networks() {
    let server = TestServer::start(&base_config(&["sieve"], UNTRUSTED));
    let mut c = LineClient::connect(server.addr("sieve"));
    assert_eq!(until_final(&mut c), greeting_before_tls(""));
    assert_eq!(
        run(&mut c, &plain_login()),
        ["NO (ENCRYPT-NEEDED) \"Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\"\r\n"]
    );
    assert_eq!(
        run(&mut c, "STARTTLS"),
        ["OK \"Begin TLS negotiation now.\"\r\n"]
    );
    let mut tls = c.into_tls();
    let mut caps = Vec::new();
    for _ in 0..10 {
        let line = tls.line();
        let done = line.starts_with("OK") || line.is_empty();
        caps.push(line);
        if done {
            break;
        }
    }
    let mut expected = greeting_before_tls("PLAIN LOGIN");
    expected.retain(|l| l != "\"STARTTLS\"\r\n");
    *expected.last_mut().unwrap() = "OK \"TLS negotiation successful.\"\r\n".into();
    assert_eq!(caps, expected, "capabilities are re-issued over TLS");
    assert_eq!(tls.cmd(&plain_login(), "OK"), ["OK \"Logged in.\"\r\n"]);
    assert_eq!(
        tls.cmd("LISTSCRIPTS", "OK"),
        ["OK \"Listscripts completed.\"\r\n"]
    );
}

#[test]
fn admin_scripts_that_do_not_compile_stop_the_server_with_file_and_line() {
    let work = tempfile::tempdir().unwrap();
    let broken = work.path().join("broken.sieve");
    std::fs::write(&broken, b"keep;\xff\n").unwrap();
    let config = base_config(
        &["sieve"],
        &format!("[sieve]\nbefore = [\"{}\"]\n", broken.display()),
    );
    let log = TestServer::try_start(&config)
        .err()
        .expect("a broken admin script stops the server");
    let expected = format!("sieve.before: {}:1: ", broken.display());
    assert!(log.contains(&expected), "{log}");
}

/// `GET /status.json` from the status listener, parsed.
fn status_json(server: &TestServer) -> serde_json::Value {
    use std::io::Read;
    let mut http = std::net::TcpStream::connect(server.addr("status")).unwrap();
    http.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    http.write_all(b"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    serde_json::from_str(body).unwrap()
}

#[test]
fn the_status_page_lists_the_listener_and_the_logged_in_session() {
    let server = TestServer::start(&base_config(
        &["sieve"],
        "[status]\nlisten = \"127.0.0.1:0\"\n",
    ));
    let mut c = LineClient::connect(server.addr("sieve"));
    until_final(&mut c);
    assert_eq!(run(&mut c, &plain_login()), ["OK \"Logged in.\"\r\n"]);
    assert_eq!(
        run(&mut c, "LISTSCRIPTS"),
        ["OK \"Listscripts completed.\"\r\n"]
    );
    let mut report = status_json(&server);
    for _ in 0..50 {
        let seen = report["connections"]
            .as_array()
            .is_some_and(|c| c.iter().any(|s| s["last_command"] == "LISTSCRIPTS"));
        if seen {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        report = status_json(&server);
    }
    let listener = report["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["proto"] == "sieve")
        .unwrap_or_else(|| panic!("no sieve listener in {report:#}"));
    assert_eq!(listener["local"], server.addr("sieve").to_string());
    assert_eq!(listener["tls"], "STARTTLS");
    let session = &report["connections"][0];
    assert_eq!(session["proto"], "sieve", "{report:#}");
    assert_eq!(session["user"], "plain");
    assert_eq!(session["state"], "AUTHENTICATED");
    assert_eq!(session["last_command"], "LISTSCRIPTS", "{report:#}");
}
