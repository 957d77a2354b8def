use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A tag or category path such as `work/clients`: trimmed and lower-cased,
/// 1 to 40 letters, digits, `-`, `_` or `/`, with `/` only between parts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    pub const MAX_CHARS: usize = 40;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let tag = raw.trim().to_lowercase();
        let length = tag.chars().count();
        if length == 0 || length > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "tags",
                format!("each tag must be 1 to {} characters", Self::MAX_CHARS),
            ));
        }
        if let Some(bad) = tag
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '/')))
        {
            return Err(ValidationError::new(
                "tags",
                format!("tag {raw:?} contains {bad:?}; use letters, digits, '-', '_' or '/'"),
            ));
        }
        if tag.starts_with('/') || tag.ends_with('/') || tag.contains("//") {
            return Err(ValidationError::new(
                "tags",
                format!("tag {raw:?} has an empty category part"),
            ));
        }
        Ok(Self(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task's tags: unique, at most [`TagSet::MAX_TAGS`].
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TagSet(BTreeSet<Tag>);

impl TagSet {
    pub const MAX_TAGS: usize = 20;

    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, ValidationError> {
        let tags = raw
            .iter()
            .map(|t| Tag::parse(t.as_ref()))
            .collect::<Result<BTreeSet<_>, _>>()?;
        Self::from_tags(tags)
    }

    fn from_tags(tags: BTreeSet<Tag>) -> Result<Self, ValidationError> {
        if tags.len() > Self::MAX_TAGS {
            return Err(ValidationError::new(
                "tags",
                format!("a task has at most {} tags", Self::MAX_TAGS),
            ));
        }
        Ok(Self(tags))
    }

    pub fn union(&self, other: &TagSet) -> Result<Self, ValidationError> {
        Self::from_tags(self.0.union(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &TagSet) -> Self {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|t| t.0.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_deduplicates_case_insensitively() {
        let tags = TagSet::parse(&[" Work/Clients ", "work/clients", "home"]).unwrap();
        assert_eq!(tags.to_strings(), ["home", "work/clients"]);
    }

    #[test]
    fn refuses_spaces_empty_parts_and_long_tags() {
        for bad in ["two words", "", "/lead", "trail/", "a//b", &"x".repeat(41)] {
            assert_eq!(Tag::parse(bad).unwrap_err().field, "tags", "{bad:?}");
        }
    }

    #[test]
    fn refuses_a_twenty_first_tag() {
        let twenty: Vec<String> = (0..20).map(|n| format!("t{n}")).collect();
        let tags = TagSet::parse(&twenty).unwrap();
        assert!(tags.union(&TagSet::parse(&["t20"]).unwrap()).is_err());
        let mut twenty_one = twenty.clone();
        twenty_one.push("t20".into());
        assert!(TagSet::parse(&twenty_one).is_err());
    }
}
