use serde::{Deserialize, Serialize};

/// What a member may do in a list (the table in docs/api.md): an owner
/// manages members and the list; an editor changes tasks and renames; a
/// viewer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Owner,
    Editor,
    Viewer,
}

impl Role {
    /// As stored and as the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "OWNER",
            Self::Editor => "EDITOR",
            Self::Viewer => "VIEWER",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "OWNER" => Some(Self::Owner),
            "EDITOR" => Some(Self::Editor),
            "VIEWER" => Some(Self::Viewer),
            _ => None,
        }
    }

    /// Whether this role may change the list's tasks.
    pub fn writes(self) -> bool {
        matches!(self, Self::Owner | Self::Editor)
    }
}
