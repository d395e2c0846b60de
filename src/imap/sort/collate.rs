//! The forms SORT and THREAD compare strings in, octet by octet: i;ascii-casemap (RFC 4790)
//! for address local parts, and i;unicode-casemap (RFC 5051) for subjects and display names.
//! Both map to upper (title) case, not lower: that decides where `_`, `[` and the other
//! characters between `Z` and `a` sort (after the letters), as Dovecot sorts them.

/// i;ascii-casemap: `a`-`z` become `A`-`Z`, nothing else changes.
pub fn ascii_casemap(s: &str) -> String {
    s.to_ascii_uppercase()
}

/// i;unicode-casemap, approximated without the Unicode tables: each character's titlecase
/// (its uppercase, where that is one character; `ß` stays), then the canonical decomposition
/// of the accented capitals of Latin-1, Latin Extended-A, Greek and Cyrillic (`É` is `E` and a
/// combining acute, so it sorts after every `E…` without one; `Ё` sorts among the `Е`, not
/// before `А`). Other letters keep their precomposed form, and compatibility forms
/// (ligatures, fullwidth letters) are not unfolded.
pub fn unicode_casemap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let mut upper = c.to_uppercase();
        let title = match (upper.next(), upper.next()) {
            (Some(one), None) => one,
            _ => c,
        };
        match DECOMPOSED.binary_search_by_key(&title, |&(composed, _, _)| composed) {
            Ok(at) => {
                out.push(DECOMPOSED[at].1);
                out.push(DECOMPOSED[at].2);
            }
            Err(_) => out.push(title),
        }
    }
    out
}

/// Capitals of Latin-1, Latin Extended-A, Greek and Cyrillic with a canonical decomposition
/// into one letter and one combining mark, in code point order for the binary search.
const DECOMPOSED: &[(char, char, char)] = &[
    ('À', 'A', '\u{300}'),
    ('Á', 'A', '\u{301}'),
    ('Â', 'A', '\u{302}'),
    ('Ã', 'A', '\u{303}'),
    ('Ä', 'A', '\u{308}'),
    ('Å', 'A', '\u{30A}'),
    ('Ç', 'C', '\u{327}'),
    ('È', 'E', '\u{300}'),
    ('É', 'E', '\u{301}'),
    ('Ê', 'E', '\u{302}'),
    ('Ë', 'E', '\u{308}'),
    ('Ì', 'I', '\u{300}'),
    ('Í', 'I', '\u{301}'),
    ('Î', 'I', '\u{302}'),
    ('Ï', 'I', '\u{308}'),
    ('Ñ', 'N', '\u{303}'),
    ('Ò', 'O', '\u{300}'),
    ('Ó', 'O', '\u{301}'),
    ('Ô', 'O', '\u{302}'),
    ('Õ', 'O', '\u{303}'),
    ('Ö', 'O', '\u{308}'),
    ('Ù', 'U', '\u{300}'),
    ('Ú', 'U', '\u{301}'),
    ('Û', 'U', '\u{302}'),
    ('Ü', 'U', '\u{308}'),
    ('Ý', 'Y', '\u{301}'),
    ('Ā', 'A', '\u{304}'),
    ('Ă', 'A', '\u{306}'),
    ('Ą', 'A', '\u{328}'),
    ('Ć', 'C', '\u{301}'),
    ('Ĉ', 'C', '\u{302}'),
    ('Ċ', 'C', '\u{307}'),
    ('Č', 'C', '\u{30C}'),
    ('Ď', 'D', '\u{30C}'),
    ('Ē', 'E', '\u{304}'),
    ('Ĕ', 'E', '\u{306}'),
    ('Ė', 'E', '\u{307}'),
    ('Ę', 'E', '\u{328}'),
    ('Ě', 'E', '\u{30C}'),
    ('Ĝ', 'G', '\u{302}'),
    ('Ğ', 'G', '\u{306}'),
    ('Ġ', 'G', '\u{307}'),
    ('Ģ', 'G', '\u{327}'),
    ('Ĥ', 'H', '\u{302}'),
    ('Ĩ', 'I', '\u{303}'),
    ('Ī', 'I', '\u{304}'),
    ('Ĭ', 'I', '\u{306}'),
    ('Į', 'I', '\u{328}'),
    ('İ', 'I', '\u{307}'),
    ('Ĵ', 'J', '\u{302}'),
    ('Ķ', 'K', '\u{327}'),
    ('Ĺ', 'L', '\u{301}'),
    ('Ļ', 'L', '\u{327}'),
    ('Ľ', 'L', '\u{30C}'),
    ('Ń', 'N', '\u{301}'),
    ('Ņ', 'N', '\u{327}'),
    ('Ň', 'N', '\u{30C}'),
    ('Ō', 'O', '\u{304}'),
    ('Ŏ', 'O', '\u{306}'),
    ('Ő', 'O', '\u{30B}'),
    ('Ŕ', 'R', '\u{301}'),
    ('Ŗ', 'R', '\u{327}'),
    ('Ř', 'R', '\u{30C}'),
    ('Ś', 'S', '\u{301}'),
    ('Ŝ', 'S', '\u{302}'),
    ('Ş', 'S', '\u{327}'),
    ('Š', 'S', '\u{30C}'),
    ('Ţ', 'T', '\u{327}'),
    ('Ť', 'T', '\u{30C}'),
    ('Ũ', 'U', '\u{303}'),
    ('Ū', 'U', '\u{304}'),
    ('Ŭ', 'U', '\u{306}'),
    ('Ů', 'U', '\u{30A}'),
    ('Ű', 'U', '\u{30B}'),
    ('Ų', 'U', '\u{328}'),
    ('Ŵ', 'W', '\u{302}'),
    ('Ŷ', 'Y', '\u{302}'),
    ('Ÿ', 'Y', '\u{308}'),
    ('Ź', 'Z', '\u{301}'),
    ('Ż', 'Z', '\u{307}'),
    ('Ž', 'Z', '\u{30C}'),
    ('Ά', 'Α', '\u{301}'),
    ('Έ', 'Ε', '\u{301}'),
    ('Ή', 'Η', '\u{301}'),
    ('Ί', 'Ι', '\u{301}'),
    ('Ό', 'Ο', '\u{301}'),
    ('Ύ', 'Υ', '\u{301}'),
    ('Ώ', 'Ω', '\u{301}'),
    ('Ϊ', 'Ι', '\u{308}'),
    ('Ϋ', 'Υ', '\u{308}'),
    ('Ѐ', 'Е', '\u{300}'),
    ('Ё', 'Е', '\u{308}'),
    ('Ѓ', 'Г', '\u{301}'),
    ('Ї', 'І', '\u{308}'),
    ('Ќ', 'К', '\u{301}'),
    ('Ѝ', 'И', '\u{300}'),
    ('Ў', 'У', '\u{306}'),
    ('Й', 'И', '\u{306}'),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_each_entry_is_its_own_uppercase() {
        assert!(DECOMPOSED.windows(2).all(|w| w[0].0 < w[1].0));
        for &(composed, _, _) in DECOMPOSED {
            assert_eq!(
                composed.to_uppercase().collect::<String>(),
                composed.to_string()
            );
        }
    }

    #[test]
    fn case_maps_to_upper_so_punctuation_sorts_after_letters() {
        assert_eq!(ascii_casemap("a_b@Ex"), "A_B@EX");
        assert!(ascii_casemap("aab") < ascii_casemap("a_b"));
        assert!(unicode_casemap("zz") < unicode_casemap("[only]"));
        assert_eq!(ascii_casemap("é"), "é", "ASCII only");
    }

    #[test]
    fn accented_latin_letters_decompose() {
        assert_eq!(unicode_casemap("émile"), "E\u{301}MILE");
        assert_eq!(unicode_casemap("ÉMILE"), unicode_casemap("émile"));
        assert!(unicode_casemap("eb") < unicode_casemap("éa"));
        assert!(unicode_casemap("éa") < unicode_casemap("f"));
        assert_eq!(unicode_casemap("ÿž"), "Y\u{308}Z\u{30C}");
        // ß has no one-character uppercase: it stays, and is not "SS".
        assert_eq!(unicode_casemap("ß"), "ß");
        assert_eq!(unicode_casemap("ёлка"), "Е\u{308}ЛКА");
        assert!(unicode_casemap("ада") < unicode_casemap("ёлка"));
        assert!(unicode_casemap("йод") < unicode_casemap("иван"));
        assert_eq!(unicode_casemap("Ωμέγα"), "ΩΜΕ\u{301}ΓΑ");
        assert!(unicode_casemap("Ώρα") < unicode_casemap("Ωμέγα"));
    }
}
