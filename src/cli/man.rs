//! `roost man`: the manual page (roff, section 8) written from the command-line definitions,
//! so the page the package installs says what `--help` says.

use std::fmt::Write;

use clap::Command;

/// The manual page of `cmd` and its visible subcommands.
pub fn render(cmd: &Command) -> String {
    let mut page = String::new();
    let name = cmd.get_name();
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    let _ = writeln!(
        page,
        ".TH {} 8 \"\" \"roost {}\" \"System Administration\"",
        name.to_uppercase(),
        cmd.get_version().unwrap_or("")
    );
    let _ = writeln!(page, ".SH NAME\n{} \\- {}", escape(name), escape(&about));
    let _ = writeln!(
        page,
        ".SH SYNOPSIS\n.B {}\n[\\fICOMMAND\\fR] [\\fIOPTIONS\\fR]",
        escape(name)
    );
    if let Some(long) = cmd.get_long_about() {
        let _ = writeln!(page, ".SH DESCRIPTION\n{}", paragraphs(&long.to_string()));
    }
    let _ = writeln!(page, ".SH COMMANDS");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let text = sub
            .get_long_about()
            .or_else(|| sub.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            page,
            ".TP\n.B {} {}\n{}",
            escape(name),
            escape(sub.get_name()),
            paragraphs(&text)
        );
        let args: Vec<_> = sub.get_arguments().filter(|a| !a.is_hide_set()).collect();
        if args.is_empty() {
            continue;
        }
        let _ = writeln!(page, ".RS");
        for arg in args {
            let mut flag = String::new();
            if let Some(short) = arg.get_short() {
                let _ = write!(flag, "\\fB\\-{short}\\fR, ");
            }
            match arg.get_long() {
                Some(long) => {
                    let _ = write!(flag, "\\fB\\-\\-{}\\fR", escape(long));
                }
                None => {
                    let _ = write!(
                        flag,
                        "\\fI{}\\fR",
                        escape(arg.get_id().as_str()).to_uppercase()
                    );
                }
            }
            if arg.get_action().takes_values() && arg.get_long().is_some() {
                let value = arg
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
                let _ = write!(flag, " \\fI{}\\fR", escape(&value));
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let _ = writeln!(page, ".TP\n{flag}\n{}", escape(&help));
        }
        let _ = writeln!(page, ".RE");
    }
    let _ = writeln!(
        page,
        ".SH FILES\n.TP\n/etc/roost/roost.toml\nThe configuration; \\fBroost check\\-config\\fR and \\fBroost doctor\\fR check it.\n.SH SEE ALSO\n/usr/share/doc/roost/README.md.gz"
    );
    page
}

/// Text safe in roff: backslashes and hyphens escaped, no line starting with a dot.
fn escape(text: &str) -> String {
    text.replace('\\', "\\e")
        .replace('-', "\\-")
        .lines()
        .map(|line| match line.starts_with(['.', '\'']) {
            true => format!("\\&{line}"),
            false => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Blank-line separated paragraphs as roff paragraphs.
fn paragraphs(text: &str) -> String {
    escape(text)
        .split("\n\n")
        .collect::<Vec<_>>()
        .join("\n.PP\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_flags_become_roff() {
        let cmd = Command::new("roost")
            .version("1.0")
            .about("A mail server")
            .subcommand(
                Command::new("check-config")
                    .about("Validate a config file.")
                    .arg(
                        clap::Arg::new("config")
                            .short('c')
                            .long("config")
                            .help("The TOML file"),
                    ),
            )
            .subcommand(Command::new("worker").hide(true));
        let page = render(&cmd);
        assert!(page.starts_with(".TH ROOST 8 "), "{page}");
        assert!(page.contains(".SH NAME\nroost \\- A mail server"), "{page}");
        assert!(
            page.contains(".B roost check\\-config\nValidate a config file."),
            "{page}"
        );
        assert!(
            page.contains("\\fB\\-c\\fR, \\fB\\-\\-config\\fR \\fICONFIG\\fR\nThe TOML file"),
            "{page}"
        );
        assert!(!page.contains("worker"), "hidden commands stay out: {page}");
        assert_eq!(escape(".dot\\"), "\\&.dot\\e");
    }
}
