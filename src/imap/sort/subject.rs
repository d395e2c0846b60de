//! The base subject of RFC 5256 section 2.1, which SORT (SUBJECT) compares and both threading
//! algorithms group by, and whether extracting it removed a reply or forward marker (which
//! THREAD=REFERENCES step 5 asks).
//!
//! Every step cuts a slice off the (decoded, whitespace-collapsed) subject, so a subject of a
//! million `Re: ` costs one pass, not one copy per prefix.

/// A subject reduced for comparison (RFC 5256 2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseSubject {
    /// The base subject, in its own case (comparisons map it, see [`super::collate`]).
    pub text: String,
    /// Extraction removed a `subj-refwd` (`re:`, `fw:`, `fwd:`), a `(fwd)` trailer or a
    /// `[fwd: ...]` wrapper: the message is a reply or a forward (RFC 5256 section 4, step 5).
    pub reply_or_forward: bool,
}

/// The base subject of `subject`, whose encoded-words the caller has already decoded to UTF-8
/// (step 1's first half).
pub fn base_subject(subject: &str) -> BaseSubject {
    let collapsed = collapse_whitespace(subject);
    let mut s = collapsed.as_str();
    let mut marked = false;
    loop {
        // (2) trailers: `(fwd)` and blanks, repeatedly.
        loop {
            s = s.trim_end_matches(' ');
            match strip_suffix_ignore_case(s, "(fwd)") {
                Some(rest) => {
                    s = rest;
                    marked = true;
                }
                None => break,
            }
        }
        // (3)-(5) leaders: blanks, `*subj-blob subj-refwd`, and a `subj-blob` when a non-empty
        // subject follows it. A leading blob followed by `re:` goes in two turns of this loop,
        // which removes the same text as the RFC's one `*subj-blob subj-refwd` match.
        loop {
            if let Some(rest) = s.strip_prefix(' ') {
                s = rest;
            } else if let Some(rest) = strip_refwd(s) {
                s = rest;
                marked = true;
            } else if let Some(rest) = strip_blob(s).filter(|rest| !rest.is_empty()) {
                s = rest;
            } else {
                break;
            }
        }
        // (6) a `[fwd: ...]` wrapper, then again from (2).
        match strip_prefix_ignore_case(s, "[fwd:").and_then(|rest| rest.strip_suffix(']')) {
            Some(inner) => {
                s = inner;
                marked = true;
            }
            None => break,
        }
    }
    BaseSubject {
        text: s.to_string(),
        reply_or_forward: marked,
    }
}

/// Step (1)'s second half: tabs and line breaks (what unfolding leaves) become spaces, and a
/// run of them one space. Only these are blanks to the RFC's grammar (`WSP`), not every
/// Unicode space.
fn collapse_whitespace(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    let mut blank = false;
    for c in subject.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            blank = true;
            continue;
        }
        if blank {
            out.push(' ');
            blank = false;
        }
        out.push(c);
    }
    if blank {
        out.push(' ');
    }
    out
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    // An ASCII prefix matched, so its length is a character boundary.
    head.eq_ignore_ascii_case(prefix.as_bytes())
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.as_bytes().get(cut..)?;
    (tail.eq_ignore_ascii_case(suffix.as_bytes()) && s.is_char_boundary(cut)).then(|| &s[..cut])
}

/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`.
fn strip_refwd(s: &str) -> Option<&str> {
    // `fwd` before `fw`: after `fw`, a `d` is neither a blank, a `[` nor the colon.
    let rest = ["re", "fwd", "fw"]
        .iter()
        .find_map(|word| strip_prefix_ignore_case(s, word))?;
    let rest = rest.trim_start_matches(' ');
    let rest = strip_blob(rest).unwrap_or(rest);
    rest.strip_prefix(':')
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`, BLOBCHAR being anything but the brackets. The scan
/// stops at the first bracket, so a failed attempt never reads past the next `[`.
fn strip_blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(['[', ']'])?;
    inner[end..]
        .strip_prefix(']')
        .map(|rest| rest.trim_start_matches(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(subject: &str) -> String {
        base_subject(subject).text
    }

    fn is_reply(subject: &str) -> bool {
        base_subject(subject).reply_or_forward
    }

    #[test]
    fn replies_forwards_and_list_tags_are_removed() {
        assert_eq!(base("Re: Fwd: [list] Hello  world (fwd)"), "Hello world");
        assert_eq!(base("RE[2]: hi"), "hi");
        assert_eq!(
            base("Re [2] : hi"),
            "hi",
            "blanks and a blob before the colon"
        );
        assert_eq!(base("[list] Re: [other] Re: x"), "x");
        assert_eq!(base("[Fwd: report]"), "report");
        assert_eq!(base("Re: [fwd: Re: [a] x (FWD)]"), "x");
        assert_eq!(base("[fwd: [fwd: inner] ]"), "inner", "wrappers nest");
        assert_eq!(base("Plain"), "Plain");
        assert_eq!(base("Fw: Fwd: FW: x"), "x");
    }

    #[test]
    fn a_blob_stays_when_nothing_would_remain() {
        assert_eq!(base("[only]"), "[only]");
        assert_eq!(
            base("[a] [b]"),
            "[b]",
            "step 4 takes [a], then [b] alone stays"
        );
        assert_eq!(base("Re: [only]"), "[only]");
        assert_eq!(base("[a] (fwd)"), "[a]");
    }

    #[test]
    fn only_the_rfc_grammar_is_removed() {
        // `Ré` is not `re`: accented letters are not the ASCII prefix.
        assert_eq!(base("fw: Ré: é"), "Ré: é");
        // No colon, no reply prefix; the `(fwd)` trailer still goes.
        assert_eq!(base("Re (fwd)"), "Re");
        assert_eq!(base("Reply: x"), "Reply: x");
        assert_eq!(base("Refactor"), "Refactor");
        // A trailer needs the parentheses and sits at the end only.
        assert_eq!(base("(fwd) x"), "(fwd) x");
        assert_eq!(base("x fwd"), "x fwd");
        // `[fwd: x]` not at the end is no wrapper, but it is a blob (any text without brackets).
        assert_eq!(base("[fwd: x] y"), "y");
        assert!(!is_reply("[fwd: x] y"));
        // A blank that is not WSP (no-break space) is text, not a separator.
        assert_eq!(base("Re:\u{a0}x"), "\u{a0}x");
        assert_eq!(base(""), "");
        assert_eq!(base("Re:"), "");
        assert_eq!(base("  "), "");
    }

    #[test]
    fn whitespace_is_collapsed() {
        assert_eq!(base("Hello\t\r\n  World "), "Hello World");
        assert_eq!(base("RE: Été"), "Été", "the case stays: comparing maps it");
    }

    #[test]
    fn reply_or_forward_is_what_extraction_removed() {
        assert!(is_reply("Re: x"));
        assert!(is_reply("x (fwd)"));
        assert!(is_reply("[fwd: x]"));
        assert!(is_reply("[list] Fw: x"));
        assert!(!is_reply("[list] x"), "a list tag alone is not a reply");
        assert!(!is_reply("x"));
        assert!(!is_reply("Re x"));
    }

    #[test]
    fn base_subject_is_linear_in_the_number_of_prefixes() {
        // Quadratic stripping took minutes on these; each is one pass now.
        let replies = "Re: ".repeat(250_000) + "end";
        assert_eq!(base(&replies), "end");
        let wrapped = "[fwd: ".repeat(100_000) + "end" + &"]".repeat(100_000);
        assert_eq!(base(&wrapped), "end");
        let trailers = "end".to_string() + &" (fwd)".repeat(150_000);
        assert_eq!(base(&trailers), "end");
        let open = "[".repeat(200_000) + "x";
        assert_eq!(base(&open), open);
        let blobs = "[a] ".repeat(200_000) + "x";
        assert_eq!(base(&blobs), "x");
    }
}
