//! Tags ("#home") and priorities ("!high", "!1"): one word each, known by the
//! mark it starts with rather than by where it stands, so either can go
//! anywhere in the line. A backslash before the mark (`\#home`, `\!high`)
//! keeps the word for the title.

use super::cursor::{Match, Reader};
use crate::values::{Priority, Tag};

impl Reader<'_> {
    /// A tag needs a letter, so "issue #42" keeps its number in the title.
    pub(super) fn tag_at(&self, i: usize) -> Match<Tag> {
        let word = self.words.get(i)?;
        word.key.as_ref()?;
        let name = word.text.strip_prefix('#')?;
        if !name.chars().any(char::is_alphabetic) {
            return None;
        }
        Tag::parse(name).ok().map(|tag| (tag, i + 1))
    }
}

/// `!1` is urgent and `!4` low, as Todoist's p1 to p4, the reverse of
/// [`Priority::rank`].
pub(super) fn priority(key: &str) -> Option<Priority> {
    Some(match key {
        "!low" | "!4" => Priority::Low,
        "!medium" | "!med" | "!3" => Priority::Medium,
        "!high" | "!2" => Priority::High,
        "!urgent" | "!1" => Priority::Urgent,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::priority;
    use crate::quick_add::grammar::reader::{phrases, title, Phrase};
    use crate::values::{Priority, Tag};

    #[test]
    fn a_tag_needs_a_letter_and_must_be_a_valid_tag() {
        assert_eq!(
            phrases("plan #Q3"),
            [(Phrase::Tag(Tag::parse("q3").unwrap()), "#Q3")]
        );
        let too_long = format!("plan #{}", "a".repeat(Tag::MAX_CHARS + 1));
        for text in ["plan #", "plan #2027", too_long.as_str(), "plan \"#home\""] {
            assert_eq!(phrases(text), [], "{text:?}");
            assert_eq!(title(text), text);
        }
    }

    #[test]
    fn priorities_need_their_mark() {
        assert_eq!(priority("!med"), Some(Priority::Medium));
        assert_eq!(priority("!urgent"), Some(Priority::Urgent));
        assert_eq!(priority("high"), None);
        assert_eq!(priority("!0"), None);
        assert_eq!(priority("!5"), None);
        assert_eq!(
            phrases("fix !MED"),
            [(Phrase::Priority(Priority::Medium), "!MED")]
        );
    }
}
