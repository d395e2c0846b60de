//! `roost doctor`: what an admin runs before going live. It checks what would stop roost or
//! its users later, each finding in plain words with the fix: the config, every listener's
//! port, the certificate, the directories each process must reach, the PAM service file, the
//! inotify limits IDLE needs, the queue, and (given a test account) a real login per protocol.
//! The exit status is non-zero when anything failed; warnings alone leave it zero.

mod checks;
mod filters;
mod identify;
mod login;
mod tls;

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

/// `roost doctor`'s arguments.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The TOML config file.
    #[arg(short, long)]
    pub config: PathBuf,
    /// A test account to log in with over loopback, per protocol.
    #[arg(long)]
    pub user: Option<String>,
    /// Its password (else the ROOST_DOCTOR_PASSWORD environment variable, which keeps it out
    /// of the process list).
    #[arg(long)]
    pub password: Option<String>,
    /// A name clients connect to, which the certificate must cover (repeatable; the
    /// autoconfig hostname is checked too).
    #[arg(long = "hostname")]
    pub hostnames: Vec<String>,
    /// Where the kernel's settings are read (`fs/inotify/...`); for tests.
    #[arg(long, default_value = "/proc/sys", hide = true)]
    pub proc_sys: PathBuf,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// All is well.
    Ok,
    /// Works now, but will bite (a certificate expiring soon, a low limit).
    Warn,
    /// Will not work.
    Fail,
}

/// One thing the doctor looked at, and what it found.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How bad.
    pub level: Level,
    /// What was checked (`listener imaps 0.0.0.0:993`, `certificate`).
    pub subject: String,
    /// What was found, and the fix when something is wrong.
    pub text: String,
}

impl Finding {
    fn new(level: Level, subject: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            level,
            subject: subject.into(),
            text: text.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        write!(f, "{level}  {}: {}", self.subject, self.text)
    }
}

/// Runs every check and prints the findings; non-zero exit on any failure.
pub fn main(args: &DoctorArgs) -> ExitCode {
    let findings = examine(args);
    let failed = findings.iter().filter(|f| f.level == Level::Fail).count();
    let warned = findings.iter().filter(|f| f.level == Level::Warn).count();
    // A closed pipe (`roost doctor | head`) ends the report, not the process with a panic.
    let mut out = std::io::stdout().lock();
    let _ = findings
        .iter()
        .try_for_each(|finding| writeln!(out, "{finding}"));
    let _ = writeln!(
        out,
        "roost doctor: {failed} failed, {warned} warning(s), {} checks",
        findings.len()
    );
    match failed {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Every finding, in the order an admin would fix them.
pub fn examine(args: &DoctorArgs) -> Vec<Finding> {
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            return vec![Finding::new(
                Level::Fail,
                "config",
                format!(
                    "{e}\n      (fix the lines above; `roost check-config -c FILE` repeats this)"
                ),
            )]
        }
    };
    let mut findings = vec![Finding::new(
        Level::Ok,
        "config",
        format!("{} is valid", args.config.display()),
    )];
    findings.extend(checks::listeners(&config));
    findings.extend(tls::certificate(&config, &args.hostnames));
    findings.extend(checks::paths(&config));
    findings.extend(checks::pam(&config));
    findings.extend(checks::inotify(&config, &args.proc_sys));
    findings.extend(checks::queue(&config));
    findings.extend(filters::spam_scanner(&config));
    if let Some(user) = &args.user {
        let password = args
            .password
            .clone()
            .or_else(|| std::env::var("ROOST_DOCTOR_PASSWORD").ok())
            .unwrap_or_default();
        findings.extend(login::logins(&config, user, &password));
    }
    findings
}
