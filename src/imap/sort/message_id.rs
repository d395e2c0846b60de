//! The valid Message IDs of a Message-ID, References or In-Reply-To field, which is all THREAD
//! =REFERENCES may use of them (RFC 5256 section 4, step 1): `garbage`, `<>` or `<no-at>` are
//! no ids, and a References field holding none of them counts as absent, so In-Reply-To is
//! used instead. Accepted as Dovecot accepts them: `<` ... `@` ... `>` with the blanks inside
//! removed, or RFC 5322's `msg-id` with quoted strings and comments when those appear.

/// The valid ids in `value`, in order, without their angle brackets. One pass: each `<` is
/// looked at once, the next `>`, `"` or `(` is found once for all the `<` before it, and the
/// strict grammar reads at most a line per try and, all tries together, about the field's
/// length (a field of `<(<(<(` ends its tries early instead of reading a line per `<`).
pub fn message_ids(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut at = 0;
    let mut stop = 0;
    let mut budget = value.len() + STRICT_SPARE;
    while let Some(open) = value[at..].find('<').map(|i| at + i) {
        let from = open + 1;
        if stop < from {
            match value[from..].find(['>', '"', '(']) {
                Some(i) => stop = from + i,
                None => break,
            }
        }
        if value[stop..].starts_with('>') {
            let inner = &value[from..stop];
            at = stop + 1;
            if inner.contains('@') {
                ids.push(inner.chars().filter(|c| !is_blank(*c)).collect());
            }
            continue;
        }
        // A quoted local part or a comment: the strict grammar, else on to the next `<`.
        let mut end = from + (value.len() - from).min(MAX_LINE).min(budget);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        match strict_msg_id(&value[from..end]) {
            Some((id, remainder)) => {
                at = end - remainder.len();
                budget = budget.saturating_sub(at - from);
                ids.push(id);
            }
            None => {
                at = from;
                budget = budget.saturating_sub(end - from);
            }
        }
    }
    ids
}

/// The first valid id in `value` (Message-ID, and In-Reply-To's only use).
pub fn first_message_id(value: &str) -> Option<String> {
    message_ids(value).into_iter().next()
}

/// The longest a line of a message may be (RFC 5322 2.1.1), and so the most one try of the
/// strict grammar reads.
const MAX_LINE: usize = 998;

/// What the strict grammar may read beyond the field's length, over all its tries.
const STRICT_SPARE: usize = 4 * MAX_LINE;

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `id-left "@" id-right ">"` after the `<`, with folding whitespace and comments around the
/// parts: the id (the left part as written, quotes included) and what follows the `>`.
fn strict_msg_id(s: &str) -> Option<(String, &str)> {
    let s = skip_cfws(s)?;
    let (left, s) = match s.strip_prefix('"') {
        Some(quoted) => {
            let end = quoted_end(quoted)?;
            (&s[..end + 2], &quoted[end + 1..])
        }
        None => dot_atom(s)?,
    };
    let s = skip_cfws(s)?.strip_prefix('@')?;
    let s = skip_cfws(s)?;
    let (right, s) = match s.strip_prefix('[') {
        Some(literal) => {
            let end = literal.find([']', '[', '\\'])?;
            literal[end..].starts_with(']').then_some(())?;
            (&s[..end + 2], &literal[end + 1..])
        }
        None => dot_atom(s)?,
    };
    let s = skip_cfws(s)?.strip_prefix('>')?;
    Some((format!("{left}@{right}"), s))
}

/// The byte index of the closing quote in `s` (which follows an opening one), honouring
/// backslash escapes.
fn quoted_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return Some(i),
            _ => {}
        }
    }
    None
}

/// `dot-atom-text`: atoms joined by single dots; the text and the rest.
fn dot_atom(s: &str) -> Option<(&str, &str)> {
    let atext =
        |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    let end = s.find(|c: char| !(atext(c) || c == '.')).unwrap_or(s.len());
    let text = &s[..end];
    let valid =
        !text.is_empty() && !text.starts_with('.') && !text.ends_with('.') && !text.contains("..");
    valid.then_some((text, &s[end..]))
}

/// Skips blanks and (nested) comments, counting the depth instead of recursing; `None` for a
/// comment that never closes.
fn skip_cfws(s: &str) -> Option<&str> {
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match (depth, escaped, c) {
            (_, true, _) => escaped = false,
            (1.., false, '\\') => escaped = true,
            (_, false, '(') => depth += 1,
            (1.., false, ')') => depth -= 1,
            (1.., false, _) => {}
            (0, false, c) if is_blank(c) => {}
            (0, false, _) => return Some(&s[i..]),
        }
    }
    (depth == 0).then_some("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bracketed_ids_with_an_at_sign_count() {
        assert_eq!(message_ids("<a@x> <b@y>"), ["a@x", "b@y"]);
        assert_eq!(message_ids("garbage <a@x> junk, <b@y>,"), ["a@x", "b@y"]);
        assert!(message_ids("garbage here").is_empty());
        assert!(message_ids("a@x").is_empty(), "no brackets");
        assert!(message_ids("<a@x").is_empty(), "never closed");
        assert!(message_ids("<> <nothing>").is_empty());
        assert_eq!(message_ids("<bad> <a@x>"), ["a@x"]);
        assert_eq!(message_ids("<a@x><b@x>"), ["a@x", "b@x"]);
        assert_eq!(message_ids("Your message of Monday <a@x>"), ["a@x"]);
    }

    #[test]
    fn blanks_inside_are_dropped_and_case_is_kept() {
        assert_eq!(message_ids("< a@x >"), ["a@x"]);
        assert_eq!(message_ids("<a @\r\n x>"), ["a@x"]);
        assert_eq!(message_ids("<A@X>"), ["A@X"]);
        assert_eq!(
            message_ids("<a<b@x>"),
            ["a<b@x"],
            "what lies between < and > is taken"
        );
    }

    #[test]
    fn quotes_and_comments_take_the_rfc_5322_grammar() {
        assert_eq!(message_ids("<\"p 1\"@x>"), ["\"p 1\"@x"]);
        assert_eq!(message_ids("<(c) a@(d) x (e)> <b@y>"), ["a@x", "b@y"]);
        assert_eq!(message_ids("<a@[1.2.3.4]>"), ["a@[1.2.3.4]"]);
        assert_eq!(
            message_ids("<\"open@x> <b@y>"),
            ["b@y"],
            "a broken one is skipped"
        );
        assert_eq!(message_ids("<(((a@x>"), Vec::<String>::new());
        assert_eq!(message_ids("<a@x>(comment)"), ["a@x"]);
        assert_eq!(first_message_id("x <a@x> <b@x>").as_deref(), Some("a@x"));
        assert_eq!(first_message_id("notvalid"), None);
    }

    #[test]
    fn a_long_field_is_read_in_one_pass() {
        let many = "<a@x> ".repeat(100_000);
        assert_eq!(message_ids(&many).len(), 100_000);
        let open = "<(".repeat(100_000);
        assert!(message_ids(&open).is_empty());
        let opens = "<".repeat(200_000) + "(";
        assert!(message_ids(&opens).is_empty());
        let late = "<(".repeat(100_000) + " <a@x>";
        assert_eq!(
            message_ids(&late),
            ["a@x"],
            "the fast way still reads to the end"
        );
    }
}
