//! `lists` and `invitations`: the lists the caller belongs to, with their
//! members, and the invitations waiting for them (docs/adr/0015). Both read
//! the membership the command side writes with each change, so a list shows
//! from the moment its creation, or the caller's joining, committed, and is
//! gone from the moment their removal did.

use api_core::error::ApiResult;
use api_core::request::{actor, service};
use api_core::ListRole;
use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::Version;
use event_store::command::ListService;

#[derive(Default)]
pub struct ListQuery;

/// A member of a list and their role.
#[derive(SimpleObject)]
pub struct ListMember {
    pub user_id: String,
    pub role: ListRole,
}

/// A list the caller belongs to.
#[derive(SimpleObject)]
pub struct SharedList {
    pub id: ID,
    /// Empty when whoever named it erased their data.
    pub name: String,
    /// The caller's role in it.
    pub role: ListRole,
    pub archived: bool,
    pub version: Version,
    /// Owner first, then by user id.
    pub members: Vec<ListMember>,
}

/// An invitation waiting for the caller's answer.
#[derive(Debug, Clone, SimpleObject)]
pub struct ListInvitation {
    pub id: ID,
    pub list_id: ID,
    pub list_name: String,
    pub role: ListRole,
    /// Who invited them.
    pub from: String,
    pub invited_at: DateTime<Utc>,
}

#[Object]
impl ListQuery {
    /// The id of your Inbox: the list every task of yours is in until it
    /// moves to a shared one. Yours alone (it takes no members); `createTask`,
    /// `moveTask` and `tasks(filter: {listIds})` take it as they take a
    /// shared list's id.
    async fn inbox_id(&self, ctx: &Context<'_>) -> ApiResult<ID> {
        let actor = actor(ctx)?;
        Ok(ID(domain::list::inbox_of(&actor.user_id).to_string()))
    }

    /// The lists you belong to (at most 100), oldest membership first.
    async fn lists(&self, ctx: &Context<'_>) -> ApiResult<Vec<SharedList>> {
        let actor = actor(ctx)?;
        let views = service::<ListService>(ctx)?
            .lists(actor.user_id.as_str())
            .await?;
        Ok(views
            .into_iter()
            .filter_map(|view| {
                let role = view.role_of(actor.user_id.as_str())?;
                Some(SharedList {
                    id: ID(view.list_id.to_string()),
                    name: view.name,
                    role: role.into(),
                    archived: view.archived,
                    version: view.version,
                    members: view
                        .members
                        .into_iter()
                        .map(|(user_id, role)| ListMember {
                            user_id,
                            role: role.into(),
                        })
                        .collect(),
                })
            })
            .collect())
    }

    /// Invitations waiting for your answer, newest first.
    async fn invitations(&self, ctx: &Context<'_>) -> ApiResult<Vec<ListInvitation>> {
        let actor = actor(ctx)?;
        let waiting = service::<ListService>(ctx)?
            .invitations(actor.user_id.as_str())
            .await?;
        Ok(waiting
            .into_iter()
            .map(|invitation| ListInvitation {
                id: ID(invitation.invitation_id.to_string()),
                list_id: ID(invitation.list_id.to_string()),
                list_name: invitation.list_name,
                role: invitation.role.into(),
                from: invitation.invited_by,
                invited_at: invitation.invited_at,
            })
            .collect())
    }
}
