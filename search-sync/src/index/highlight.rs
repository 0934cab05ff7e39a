//! Where a hit matched: the spans of its fields that hold a term the query's words were
//! expanded to, for a front end to highlight. Offsets count UTF-16 code units, as JavaScript
//! strings do.

use std::collections::HashSet;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::query::{Match, Range};

/// Lower case without accents: the index's `search_fold` for the letters a highlight needs
/// (a word the two fold differently is not highlighted, but still matches).
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The terms a search kept: words (matched in the name and the city) and identifiers with
/// the query token that found each.
#[derive(Debug, Default)]
pub struct Terms {
    pub words: HashSet<String>,
    /// (the identifier as indexed, the folded query token that matched it).
    pub identifiers: Vec<(String, String)>,
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The spans of `text`'s words whose folded form is a kept word.
fn word_ranges(text: &str, words: &HashSet<String>) -> Vec<Range> {
    let mut ranges = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    let mut offset = 0;
    let mut close = |from: (usize, usize), to_byte: usize, to_utf16: usize| {
        if words.contains(&fold(&text[from.0..to_byte])) {
            ranges.push(Range {
                start: from.1,
                length: to_utf16 - from.1,
            });
        }
    };
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            start.get_or_insert((i, offset));
        } else if let Some(from) = start.take() {
            close(from, i, offset);
        }
        offset += c.len_utf16();
    }
    if let Some(from) = start {
        close(from, text.len(), offset);
    }
    ranges
}

/// The span of an identifier that a kept identifier term matched: its start (past a phone
/// number's `+` when the term is the number without it) for the query token's length.
fn identifier_range(value: &str, terms: &[(String, String)]) -> Option<Range> {
    let folded = fold(value);
    let bare = value.strip_prefix('+');
    terms.iter().find_map(|(term, token)| {
        let skip = if *term == folded {
            0
        } else if bare.is_some_and(|b| b == term) {
            1
        } else {
            return None;
        };
        let matched: String = value
            .chars()
            .skip(skip)
            .take(token.chars().count())
            .collect();
        Some(Range {
            start: skip,
            length: utf16_len(&matched),
        })
    })
}

/// The matches of a hit with these fields.
pub fn matches(
    terms: &Terms,
    words: [(&'static str, Option<&str>); 2],
    identifiers: &[(&'static str, Option<&str>)],
) -> Vec<Match> {
    let mut out = Vec::new();
    for (field, text) in words {
        let Some(text) = text else { continue };
        let ranges = word_ranges(text, &terms.words);
        if !ranges.is_empty() {
            out.push(Match { field, ranges });
        }
    }
    for (field, value) in identifiers {
        if let Some(r) = value.and_then(|v| identifier_range(v, &terms.identifiers)) {
            out.push(Match {
                field,
                ranges: vec![r],
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(words: &[&str], ids: &[(&str, &str)]) -> Terms {
        Terms {
            words: words.iter().map(|s| s.to_string()).collect(),
            identifiers: ids
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn words_are_found_folded_and_counted_in_utf16() {
        let t = terms(&["muller", "backerei"], &[]);
        assert_eq!(
            word_ranges("Müller Bäckerei", &t.words),
            [
                Range {
                    start: 0,
                    length: 6
                },
                Range {
                    start: 7,
                    length: 8
                }
            ]
        );
        // An astral character before the word counts two units.
        assert_eq!(
            word_ranges("🎉 Müller", &t.words),
            [Range {
                start: 3,
                length: 6
            }]
        );
        assert!(word_ranges("Mullerton", &t.words).is_empty());
    }

    #[test]
    fn identifiers_are_highlighted_for_the_token_typed() {
        let t = terms(
            &["acme"],
            &[("sales@acme.example", "sales@ac"), ("15551234", "1555")],
        );
        let m = matches(
            &t,
            [("name", Some("Acme Corp")), ("city", None)],
            &[
                ("email", Some("Sales@acme.example")),
                ("phone", Some("+15551234")),
                ("domain", Some("other.example")),
            ],
        );
        assert_eq!(
            m,
            [
                Match {
                    field: "name",
                    ranges: vec![Range {
                        start: 0,
                        length: 4
                    }]
                },
                Match {
                    field: "email",
                    ranges: vec![Range {
                        start: 0,
                        length: 8
                    }]
                },
                Match {
                    field: "phone",
                    ranges: vec![Range {
                        start: 1,
                        length: 4
                    }]
                },
            ]
        );
    }
}
