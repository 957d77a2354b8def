//! Numbers as written in a phrase: runs of ASCII digits, and counts such as "2"
//! or "two". Digits are capped in length so a long number is a title word
//! rather than an overflow, and only ASCII digits count, not every Unicode digit.

/// At least 1: "2", "two".
pub(super) fn count(key: &str) -> Option<u32> {
    const WORDS: [&str; 12] = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve",
    ];
    let n = match WORDS.iter().position(|word| *word == key) {
        Some(index) => u32::try_from(index).ok()? + 1,
        None => digits(key, 4)?,
    };
    (n >= 1).then_some(n)
}

/// Only ASCII digits, at most `max_len` of them.
pub(super) fn digits(key: &str, max_len: usize) -> Option<u32> {
    (!key.is_empty() && key.len() <= max_len && key.bytes().all(|b| b.is_ascii_digit()))
        .then(|| key.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::{count, digits};

    #[test]
    fn a_count_is_a_number_word_or_up_to_four_digits_and_never_zero() {
        assert_eq!(count("1"), Some(1));
        assert_eq!(count("two"), Some(2));
        assert_eq!(count("twelve"), Some(12));
        assert_eq!(count("9999"), Some(9999));
        assert_eq!(count("0"), None);
        assert_eq!(count("thirteen"), None);
        assert_eq!(count("10000"), None);
        assert_eq!(count("Two"), None, "keys are already lower-cased");
    }

    #[test]
    fn digits_are_ascii_only_and_capped_in_length() {
        assert_eq!(digits("05", 2), Some(5));
        assert_eq!(digits("123", 2), None);
        assert_eq!(digits("", 2), None);
        assert_eq!(digits("+5", 2), None);
        assert_eq!(digits("٣", 2), None);
        assert_eq!(digits("3", 2), Some(3));
    }
}
