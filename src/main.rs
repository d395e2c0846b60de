//! `roost`: a mail server (IMAP, POP3, SMTP submission, inbound SMTP, LMTP) over maildir and mbox.
//!
//! This file is the binary's edge: command-line parsing, logging set-up, and turning errors into
//! exit codes. Everything else lives in the modules below.

mod auth;
mod cli;
mod config;
mod counters;
mod filter;
mod imap;
mod listen;
mod managesieve;
mod password;
mod pop3;
mod privilege;
mod resident;
mod server;
mod session;
mod smtp;
mod status;
mod system;
#[cfg(test)]
mod transcript;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::password::Scheme;

/// A mailbox access server: IMAP, POP3 and SMTP submission over maildir and mbox.
///
/// Run without arguments to start the embedded default: every protocol on loopback on
/// unprivileged ports (IMAP 1143, IMAPS 1993, POP3 1110, POP3S 1995, submission 1587,
/// submissions 1465), mail in ./data, a self-signed certificate in ./certs, and a first user
/// whose password is printed once.
#[derive(Debug, Parser)]
#[command(name = "roost", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the server with a config file (or the embedded default without -c).
    Serve {
        /// The TOML config file.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate a config file: print every problem with file, line and key; exit non-zero if any.
    CheckConfig {
        /// The TOML config file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Hash a password for a passwd-file, like `doveadm pw`.
    Pw {
        /// Scheme: SHA512-CRYPT (default), SHA256-CRYPT, BLF-CRYPT, ARGON2ID, PLAIN.
        #[arg(short, long, default_value = "SHA512-CRYPT")]
        scheme: String,
        /// The password (prompted for, or read from standard input, when absent).
        #[arg(short, long)]
        password: Option<String>,
    },
    /// Show the running server's listeners and connections, like netstat.
    Status {
        #[command(flatten)]
        target: status::cli::Target,
    },
    /// List logged-in users, like `doveadm who`.
    Who {
        #[command(flatten)]
        target: status::cli::Target,
    },
    /// End every session of a user.
    Kick {
        #[command(flatten)]
        target: status::cli::Target,
        /// The user whose sessions end.
        #[arg(value_name = "USER")]
        victim: String,
    },
    /// Deliver a message from standard input to a user's INBOX, like dovecot-lda (for Postfix's
    /// mailbox_command, exim or procmail). Exit codes follow sysexits: 67 no such user, 75 retry.
    Deliver {
        /// The TOML config file.
        #[arg(short, long)]
        config: PathBuf,
        /// The user whose INBOX gets the message.
        #[arg(short, long)]
        user: String,
        /// The envelope sender, recorded as Return-Path (`<>` when not given).
        #[arg(short, long)]
        from: Option<String>,
        /// The recipient address the MTA saw (`user+detail@domain`), for the user's Sieve
        /// script; the user name when not given.
        #[arg(short = 'a', long)]
        address: Option<String>,
    },
    /// List the outbound queue like mailq, or with --flush attempt every message now (exim -qf).
    Queue {
        /// The TOML config file.
        #[arg(short, long)]
        config: PathBuf,
        /// Attempt every queued message now.
        #[arg(long)]
        flush: bool,
    },
    /// Check a config and this host before going live: ports, certificate, directories, PAM,
    /// inotify limits, the queue, and a real login with a test account. Non-zero on failure.
    Doctor(cli::doctor::DoctorArgs),
    /// Internal: print the manual page (roff), as the package installs it.
    #[command(hide = true)]
    Man,
    /// Write a roost.toml from a Dovecot 2.3 configuration; list what it cannot carry over.
    ImportDovecot {
        /// Dovecot's configuration directory (or its dovecot.conf).
        #[arg(value_name = "DIR", default_value = cli::import_dovecot::DEFAULT_DIR, conflicts_with = "doveconf")]
        dir: PathBuf,
        /// Read saved `doveconf -n` output instead of a directory.
        #[arg(long, value_name = "FILE")]
        doveconf: Option<PathBuf>,
        /// Where to write roost.toml (default: standard output).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Internal: run one authenticated session as the mail owner (started by `serve` as root).
    #[command(hide = true)]
    Worker(privilege::worker::WorkerArgs),
    /// Internal: deliver a spooled message as its mail owner (started by `serve` as root).
    #[command(hide = true)]
    DeliverWorker(privilege::delivery::DeliverWorkerArgs),
}

fn init_logging(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A daemon keeps serving when its log pipe breaks (journald restart, closed terminal).
        .log_internal_errors(false)
        .init();
}

fn main() -> ExitCode {
    limit_malloc_arenas(1);
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Cmd::Serve { config: None }) {
        Cmd::Serve { config } => serve(config),
        Cmd::CheckConfig { config } => return check_config(&config),
        Cmd::Pw { scheme, password } => pw(&scheme, password),
        Cmd::Status { target } => print(status::cli::status(&target)),
        Cmd::Who { target } => print(status::cli::who(&target)),
        Cmd::Kick { target, victim } => print(status::cli::kick(&target, &victim)),
        Cmd::Doctor(args) => return cli::doctor::main(&args),
        Cmd::Man => {
            use clap::CommandFactory;
            print!("{}", cli::man::render(&Cli::command()));
            Ok(())
        }
        Cmd::ImportDovecot {
            dir,
            doveconf,
            output,
        } => cli::import_dovecot::main(doveconf.as_ref().unwrap_or(&dir), output.as_deref())
            .map_err(anyhow::Error::from),
        Cmd::Worker(args) => {
            init_logging("info");
            privilege::worker::main(args)
        }
        Cmd::DeliverWorker(args) => {
            init_logging("info");
            privilege::delivery::worker_main(args)
        }
        Cmd::Deliver {
            config,
            user,
            from,
            address,
        } => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("roost: {e:#}");
                    return ExitCode::from(78);
                }
            };
            init_logging("warn");
            return cli::deliver::main(&config, &user, from.as_deref(), address.as_deref());
        }
        Cmd::Queue { config, flush } => load(&config).and_then(|config| {
            init_logging("warn");
            let out = if flush {
                cli::queue::flush(config)?
            } else {
                cli::queue::list(&config)?
            };
            print!("{out}");
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roost: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints what an admin command produced.
fn print(output: Result<String, status::cli::CliError>) -> anyhow::Result<()> {
    print!("{}", output?);
    Ok(())
}

fn load(path: &Path) -> anyhow::Result<config::Config> {
    config::Config::load(path).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
}

fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let mut notices = Vec::new();
    let config = match path {
        Some(path) => config::Config::load(&path)
            .map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?,
        None => {
            let setup = config::embedded(&std::env::current_dir()?)?;
            if let Some((user, password)) = &setup.new_user {
                println!("roost: created the first user in ./data/users (shown only this once):");
                println!("    user: {user}");
                println!("    password: {password}");
                std::io::stdout().flush()?;
            }
            notices = setup.notices;
            setup.config
        }
    };
    init_logging(&config.log_level);
    for notice in notices {
        tracing::warn!("{notice}");
    }
    server::serve(config)
}

fn check_config(path: &Path) -> ExitCode {
    match config::Config::load(path) {
        Ok(cfg) => {
            let mut protocols: Vec<String> = cfg
                .listeners
                .iter()
                .map(|l| format!("{} on {}", l.protocol.name(), l.addr))
                .collect();
            if let Some(path) = &cfg.smtp.lmtp_socket {
                protocols.push(format!("lmtp on unix:{}", path.display()));
            }
            println!("{}: OK ({})", path.display(), protocols.join(", "));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn pw(scheme_name: &str, password: Option<String>) -> anyhow::Result<()> {
    let scheme = Scheme::from_name(scheme_name).ok_or_else(|| {
        let known: Vec<&str> = Scheme::ALL.iter().map(|s| s.name()).collect();
        anyhow::anyhow!(
            "unknown scheme {scheme_name:?} (known: {})",
            known.join(", ")
        )
    })?;
    let password = match password {
        Some(p) => p,
        None => {
            if std::io::stdin().is_terminal() {
                eprint!("Enter new password: ");
            }
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    anyhow::ensure!(!password.is_empty(), "empty password");
    println!("{}", password::hash(scheme, &password)?);
    Ok(())
}

/// glibc gives every thread that allocates its own malloc arena; with the threads a runtime
/// adds, freed memory stays spread over many arenas and the resident size climbs. One arena per
/// thread that serves sessions is enough: one for a worker process or the login process, one
/// per session thread for the one-process server (`server.rs` raises it there; with one arena
/// for two session threads, they queued for its lock: 522 against 323 µs of CPU per command
/// under the 20-client IMAP load).
fn limit_malloc_arenas(arenas: usize) {
    // SAFETY: mallopt only sets an allocator tunable; it limits the arenas made from now on.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, i32::try_from(arenas).unwrap_or(i32::MAX));
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
