//! The words being read and where: what every part reads through. The parts
//! add their own `…_at(i)` methods to [`Reader`]; `reader` tries them in turn.

use std::ops::Range;

use super::words::Word;

/// A phrase and the index of the word after it.
pub(super) type Match<T> = Option<(T, usize)>;

/// The words being read; each part adds its own `…_at(i)` methods, which look
/// at the words from index `i` and say what they found and where it ends.
pub(super) struct Reader<'a> {
    pub(super) text: &'a str,
    pub(super) words: &'a [Word],
    /// Whether "until" may start a phrase; see `reader::read`.
    pub(super) until_allowed: bool,
}

impl Reader<'_> {
    /// The word's key; `None` past the end or for a literal word.
    pub(super) fn key(&self, i: usize) -> Option<&str> {
        self.words.get(i)?.key.as_deref()
    }

    pub(super) fn is(&self, i: usize, options: &[&str]) -> bool {
        self.key(i).is_some_and(|key| options.contains(&key))
    }

    /// The text of a run of words as written, for an error to quote.
    pub(super) fn source(&self, words: Range<usize>) -> &str {
        &self.text[self.words[words.start].span.start..self.words[words.end - 1].span.end]
    }
}
