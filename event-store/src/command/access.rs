//! Who may read and change a task (docs/adr/0016). A task in its owner's
//! Inbox is theirs alone, which the aggregate checks. A task in a shared
//! list is its members': every member reads it, owners and editors change
//! it. The commit itself checks a change (the repository's checked
//! statement); what is here reads the same membership rows to answer
//! everything else: why a commit was refused, and who may read.

use domain::list::Role;
use domain::values::UserId;
use domain::Task;
use sqlx::PgPool;
use uuid::Uuid;

use super::CommandError;

/// The caller's standing in one list, as the membership rows hold it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Standing {
    list_id: Uuid,
    archived: bool,
    role: Option<Role>,
}

async fn standings(
    pool: &PgPool,
    user: &UserId,
    lists: &[Uuid],
) -> Result<Vec<Standing>, CommandError> {
    let rows: Vec<(Uuid, bool, Option<String>)> = sqlx::query_as(
        "SELECT l.list_id, l.archived, m.role
           FROM lists l LEFT JOIN list_members m ON m.list_id = l.list_id AND m.user_id = $2
          WHERE l.list_id = ANY($1)",
    )
    .bind(lists)
    .bind(user.as_str())
    .fetch_all(pool)
    .await
    .map_err(|e| CommandError::Internal(e.into()))?;
    Ok(rows
        .into_iter()
        .map(|(list_id, archived, role)| Standing {
            list_id,
            archived,
            role: role.as_deref().and_then(Role::parse),
        })
        .collect())
}

/// Why `user` may not write to `lists` (the lists a command on a task in
/// list `current` checks), or `Ok` if, as the rows stand now, they may. A task in a list
/// they do not belong to is not found, whatever their past with it; a
/// list they would move or add a task to and do not belong to is no such
/// list; a viewer is forbidden; an archived list takes no changes.
pub(super) async fn may_write(
    pool: &PgPool,
    user: &UserId,
    current: Option<Uuid>,
    lists: &[Uuid],
) -> Result<(), CommandError> {
    if lists.is_empty() {
        return Ok(());
    }
    let standings = standings(pool, user, lists).await?;
    let standing = |list: Uuid| standings.iter().find(|s| s.list_id == list);
    if let Some(current) = current {
        if standing(current).and_then(|s| s.role).is_none() {
            return Err(CommandError::Rejected(domain::TaskError::NotFound));
        }
    }
    if lists
        .iter()
        .any(|list| standing(*list).and_then(|s| s.role).is_none())
    {
        return Err(CommandError::NoSuchList);
    }
    if standings.iter().any(|s| s.role == Some(Role::Viewer)) {
        return Err(CommandError::Forbidden(
            "a viewer of the list cannot change its tasks",
        ));
    }
    if standings.iter().any(|s| s.archived) {
        return Err(CommandError::ListArchived);
    }
    Ok(())
}

/// Whether `user` may read `task`: its owner while it is in their Inbox,
/// any member of its shared list.
pub async fn may_read(pool: &PgPool, user: &UserId, task: &Task) -> Result<bool, CommandError> {
    match (task.list(), task.owner()) {
        (Some(list), _) => Ok(standings(pool, user, &[list])
            .await?
            .first()
            .is_some_and(|s| s.role.is_some())),
        (None, owner) => Ok(owner == Some(user)),
    }
}

/// Whether `user` belongs to shared list `list` (in any role).
pub(super) async fn is_member(
    pool: &PgPool,
    user: &UserId,
    list: Uuid,
) -> Result<bool, CommandError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM list_members WHERE list_id = $1 AND user_id = $2)",
    )
    .bind(list)
    .bind(user.as_str())
    .fetch_one(pool)
    .await
    .map_err(|e| CommandError::Internal(e.into()))
}
