//! Whose tasks a user reads: those in their Inbox and those in every shared
//! list they belong to. Each is a key the task list's rows are read under
//! (`task_list::reader_key`), read from the membership rows the command side
//! writes with each list event: a removal is seen from the moment it commits
//! (docs/adr/0016).

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::task_list::list_reader_key;

/// The keys a user's rows are read under: their own id first (their
/// Inbox), then one per shared list they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readers {
    user: String,
    keys: Vec<String>,
}

impl Readers {
    /// `user`'s Inbox alone.
    pub fn inbox_of(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            keys: vec![user.to_owned()],
        }
    }

    /// `user`'s Inbox and the shared lists they belong to now.
    pub async fn of<'e>(executor: impl PgExecutor<'e>, user: &str) -> Result<Self, sqlx::Error> {
        let lists: Vec<Uuid> = sqlx::query_scalar(
            "SELECT list_id FROM list_members WHERE user_id = $1 ORDER BY list_id",
        )
        .bind(user)
        .fetch_all(executor)
        .await?;
        let mut readers = Self::inbox_of(user);
        readers.keys.extend(lists.into_iter().map(list_reader_key));
        Ok(readers)
    }

    /// `user`'s Inbox and `lists`, as if read from the membership rows.
    #[cfg(test)]
    pub(super) fn with_lists(user: &str, lists: &[Uuid]) -> Self {
        let mut readers = Self::inbox_of(user);
        readers
            .keys
            .extend(lists.iter().copied().map(list_reader_key));
        readers
    }

    /// Whether they belong to any shared list.
    pub fn has_lists(&self) -> bool {
        self.keys.len() > 1
    }

    /// The user these keys are for.
    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Whether the user belongs to shared list `list`.
    pub fn belongs_to(&self, list: Uuid) -> bool {
        self.keys.contains(&list_reader_key(list))
    }

    /// Only the lists `lists` of these (`inbox` names the user's Inbox);
    /// a list they do not belong to narrows to nothing, like one that does
    /// not exist.
    pub fn only(&self, lists: &[Uuid], inbox: Uuid) -> Self {
        let keys = self
            .keys
            .iter()
            .filter(|key| {
                lists.iter().any(|list| {
                    (*list == inbox && **key == self.user) || **key == list_reader_key(*list)
                })
            })
            .cloned()
            .collect();
        Self {
            user: self.user.clone(),
            keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing_keeps_only_lists_the_user_belongs_to() {
        let shared = Uuid::from_u128(1);
        let stranger = Uuid::from_u128(2);
        let inbox = Uuid::from_u128(3);
        let mut readers = Readers::inbox_of("ada");
        readers.keys.push(list_reader_key(shared));
        assert!(readers.belongs_to(shared));
        assert!(!readers.belongs_to(stranger));
        assert_eq!(
            readers.only(&[shared], inbox).keys(),
            [list_reader_key(shared)]
        );
        assert_eq!(readers.only(&[inbox], inbox).keys(), ["ada".to_owned()]);
        assert!(readers.only(&[stranger], inbox).keys().is_empty());
        // Someone else's Inbox is no list of theirs either.
        assert!(readers.only(&[Uuid::from_u128(4)], inbox).keys().is_empty());
    }
}
