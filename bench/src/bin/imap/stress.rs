//! `--mode stress`: a second, independent load. Per server, one INBOX of `--messages` (2,000)
//! realistic messages and a fresh server; then `bench/imap_stress.py` (Python's imaplib, one
//! process per client: a client nobody here wrote, with its own session mix modelled on
//! Dovecot's imaptest) runs `--clients` (20) clients for `--seconds` (20). Commands/s,
//! NO/BAD answers and failed connections, server CPU per command.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use roost_bench::harness::interrupted;
use roost_bench::imap_mail;
use roost_bench::imap_proc::tree_cpu_secs;
use roost_bench::servers::{Kind, Proto, Running, Spec};

use crate::{Opts, PASSWORD, USER};

/// What one stress run reported (the script's JSON line, read field by field).
struct Outcome {
    commands: f64,
    no_bad: f64,
    failures: f64,
    seconds: f64,
}

/// The script, beside this crate's sources.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("imap_stress.py")
}

/// A number field of a flat JSON object line.
fn field(line: &str, name: &str) -> Option<f64> {
    let rest = &line[line.find(&format!("\"{name}\":"))? + name.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// Runs the script against `run` (bounded: killed after its time plus two minutes).
fn stress(run: &Running, clients: usize, seconds: u64) -> Result<Outcome, String> {
    let port = run.addr(Proto::Imap).port().to_string();
    let mut child = Command::new("python3")
        .arg(script())
        .args(["--port", &port, "--user", USER, "--password", PASSWORD])
        .args([
            "--clients",
            &clients.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(seconds + 120);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the stress script did not finish in time".into());
            }
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let get = |name| {
        field(line, name).ok_or_else(|| {
            format!(
                "stress script said {text:?} {:?}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    Ok(Outcome {
        commands: get("commands")?,
        no_bad: get("no_bad")?,
        failures: get("failures")?,
        seconds: get("seconds")?,
    })
}

/// The whole `--mode stress` run.
pub fn run(o: &Opts, kinds: &[Kind], work: &Path) {
    let messages = o.messages.unwrap_or(2000);
    let clients = o.clients.first().copied().unwrap_or(20);
    let w = format!("imap-stress-{clients}");
    for &kind in kinds {
        if interrupted() {
            break;
        }
        let dir = work.join(kind.key());
        std::fs::create_dir_all(&dir).expect("server dir");
        let mut spec = Spec::new(&dir, vec![(USER.into(), PASSWORD.into())], &[Proto::Imap]);
        spec.connections = clients;
        spec.tuned = !o.dovecot_untuned;
        let bytes = imap_mail::make_maildir(&spec.maildir(USER), messages);
        println!(
            "\n== {}: imaplib stress, {clients} clients, INBOX of {messages} messages, {:.1} MB",
            kind.label(),
            bytes as f64 / 1e6
        );
        let Some(run) = crate::start_or_record(o, kind, &spec, "stress", &w) else {
            continue;
        };
        let cpu0 = tree_cpu_secs(run.pid());
        let outcome = stress(&run, clients, o.seconds);
        let server_cpu = tree_cpu_secs(run.pid()) - cpu0;
        let key = kind.key();
        match outcome {
            Ok(r) => {
                let rate = r.commands / r.seconds.max(0.001);
                let cpu_us = server_cpu * 1e6 / r.commands.max(1.0);
                o.results.num(&w, key, "cmds_per_s", rate);
                o.results.num(&w, key, "errors", r.no_bad);
                o.results.num(&w, key, "failed_clients", r.failures);
                o.results.num(&w, key, "cpu_us_per_cmd", cpu_us);
                println!(
                    "  {rate:.0} commands/s ({:.0} in {:.1} s), {:.0} NO/BAD, {:.0} failed \
                     connections, server CPU {cpu_us:.0} µs/command",
                    r.commands, r.seconds, r.no_bad, r.failures
                );
            }
            Err(e) => {
                println!("  {e}");
                o.results.put(&w, key, "error", e);
            }
        }
        run.record_problems(&o.results, &w);
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn the_scripts_line_is_read() {
        let line = r#"{"commands": 1200, "no_bad": 0, "failures": 1, "clients": 20, "seconds": 20.5, "cmds_per_s": 58.5}"#;
        assert_eq!(field(line, "commands"), Some(1200.0));
        assert_eq!(field(line, "seconds"), Some(20.5));
        assert_eq!(field(line, "cmds_per_s"), Some(58.5));
        assert_eq!(field(line, "missing"), None);
    }
}
