//! Splitting the text into words, the unit every phrase is matched on. A word
//! keeps its span in the text, so a phrase can be quoted back exactly as typed,
//! and a lower-cased key, so matching ignores case. A quoted span or an escaped
//! `#`, `!` or `"` makes its word literal: it has no key, so no phrase can take
//! it and it always goes into the title.

use std::ops::Range;

#[derive(Debug)]
pub(super) struct Word {
    pub(super) span: Range<usize>,
    /// As it goes into the title: escapes undone, whitespace in quotes collapsed.
    pub(super) text: String,
    /// Lower-cased for matching; `None` for a literal word, which matches nothing.
    pub(super) key: Option<String>,
}

const ESCAPABLE: [char; 3] = ['#', '!', '"'];

/// Words are split on whitespace, except inside a closed quote, which is one
/// word however many spaces it holds; an unclosed quote is an ordinary character.
pub(super) fn split(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        if c.is_whitespace() {
            at += c.len_utf8();
            continue;
        }
        let start = at;
        let mut word = String::new();
        let mut literal = false;
        while let Some(c) = text[at..].chars().next() {
            if c.is_whitespace() {
                break;
            }
            let rest = &text[at..];
            if let Some(escaped) = escaped_char(rest) {
                word.push(escaped);
                literal = true;
                at += 2;
                continue;
            }
            if c == '"' {
                if let Some(close) = closing_quote(&rest[1..]) {
                    let inside = rest[1..=close].replace("\\\"", "\"");
                    word.push('"');
                    word.push_str(&inside.split_whitespace().collect::<Vec<_>>().join(" "));
                    word.push('"');
                    literal = true;
                    at += close + 2;
                    continue;
                }
            }
            word.push(c);
            at += c.len_utf8();
        }
        words.push(Word {
            span: start..at,
            key: (!literal).then(|| word.to_lowercase()),
            text: word,
        });
    }
    words
}

fn escaped_char(rest: &str) -> Option<char> {
    let mut chars = rest.chars();
    (chars.next()? == '\\')
        .then(|| chars.next())
        .flatten()
        .filter(|c| ESCAPABLE.contains(c))
}

/// Where the quote closing a span starts (relative to `inside`), skipping `\"`.
fn closing_quote(inside: &str) -> Option<usize> {
    let bytes = inside.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b'"' && (i == 0 || bytes[i - 1] != b'\\'))
}

#[cfg(test)]
mod tests {
    use super::split;

    /// Each word as (source, title text, key).
    fn words(text: &str) -> Vec<(&str, String, Option<String>)> {
        split(text)
            .into_iter()
            .map(|word| (&text[word.span], word.text, word.key))
            .collect()
    }

    fn word(source: &str, text: &str, key: Option<&str>) -> (String, String, Option<String>) {
        (source.to_owned(), text.to_owned(), key.map(str::to_owned))
    }

    fn owned(words: Vec<(&str, String, Option<String>)>) -> Vec<(String, String, Option<String>)> {
        words
            .into_iter()
            .map(|(source, text, key)| (source.to_owned(), text, key))
            .collect()
    }

    #[test]
    fn a_closed_quote_is_one_literal_word_with_its_spaces_collapsed() {
        assert_eq!(
            owned(words("say \"next  Monday\" Now x\"a b\"y")),
            [
                word("say", "say", Some("say")),
                word("\"next  Monday\"", "\"next Monday\"", None),
                word("Now", "Now", Some("now")),
                word("x\"a b\"y", "x\"a b\"y", None),
            ]
        );
    }

    #[test]
    fn an_unclosed_quote_is_an_ordinary_character() {
        assert_eq!(
            owned(words("6\" Pipe")),
            [
                word("6\"", "6\"", Some("6\"")),
                word("Pipe", "Pipe", Some("pipe")),
            ]
        );
    }

    #[test]
    fn only_marks_and_quotes_are_escaped() {
        assert_eq!(
            owned(words("\\#Tag \\!1 6\\\" a\\b \\")),
            [
                word("\\#Tag", "#Tag", None),
                word("\\!1", "!1", None),
                word("6\\\"", "6\"", None),
                word("a\\b", "a\\b", Some("a\\b")),
                word("\\", "\\", Some("\\")),
            ]
        );
    }

    #[test]
    fn spans_are_byte_ranges_split_on_any_whitespace() {
        let text = "  Zoë\t\u{3000}日本\n";
        let spans: Vec<_> = split(text).into_iter().map(|word| word.span).collect();
        assert_eq!(spans, [2..6, 10..16]);
        assert_eq!(
            owned(words(text)),
            [
                word("Zoë", "Zoë", Some("zoë")),
                word("日本", "日本", Some("日本")),
            ]
        );
    }
}
