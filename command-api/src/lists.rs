//! Lists people share (docs/adr/0015): create, rename and archive a list,
//! invite to it, answer an invitation, change a member's role, remove a
//! member, leave, and hand the list on. Every field runs one command through
//! `event_store::command::ListService`, which decides on the list as it
//! stands when the command commits.

use api_core::consistency::Session;
use api_core::error::{ApiError, ApiResult};
use api_core::request::{actor, service};
use api_core::ListRole;
use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use domain::list::{ListCommand, ListName};
use domain::values::UserId;
use domain::Version;
use event_store::command::{Actor, ListOutcome, ListService};
use uuid::Uuid;

#[derive(Default)]
pub struct ListMutation;

/// The list a mutation changed and its version afterwards.
#[derive(Debug, SimpleObject)]
pub struct ListVersion {
    pub list_id: ID,
    pub version: Version,
}

impl From<ListOutcome> for ListVersion {
    fn from(outcome: ListOutcome) -> Self {
        Self {
            list_id: ID(outcome.list_id.to_string()),
            version: outcome.version,
        }
    }
}

/// An invitation sent: its invitee answers it with `acceptInvitation` or
/// `declineInvitation`.
#[derive(Debug, SimpleObject)]
pub struct InvitationReceipt {
    pub invitation_id: ID,
}

#[derive(InputObject)]
pub struct CreateListInput {
    /// 1 to 100 characters; surrounding whitespace is trimmed.
    pub name: String,
}

fn uuid_of(field: &'static str, id: &ID) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::invalid(field, "is not an id"))
}

fn user_of(field: &'static str, raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).map_err(|e| ApiError::invalid(field, e.reason))
}

async fn run(
    ctx: &Context<'_>,
    list_id: Uuid,
    command: impl FnOnce(UserId) -> ListCommand,
) -> ApiResult<ListOutcome> {
    let actor: &Actor = actor(ctx)?;
    let command = command(actor.user_id.clone());
    let outcome = service::<ListService>(ctx)?
        .execute(actor, list_id, command)
        .await?;
    // The caller's next reads, at any door that carries the token, look
    // their lists up afresh: a list just created or joined shows at once
    // (docs/adr/0016).
    if let Some(session) = ctx.data_opt::<Session>() {
        session.wrote(actor.user_id.as_str());
    }
    Ok(outcome)
}

#[Object]
impl ListMutation {
    /// A new list of yours; you are its owner. You belong to at most 100
    /// lists.
    async fn create_list(
        &self,
        ctx: &Context<'_>,
        input: CreateListInput,
    ) -> ApiResult<ListVersion> {
        let name = ListName::parse(&input.name)?;
        let list_id = Uuid::new_v4();
        let created = run(ctx, list_id, |owner| ListCommand::Create {
            list_id,
            owner,
            name,
        })
        .await?;
        Ok(created.into())
    }

    /// Renames a list (its owner or an editor).
    async fn rename_list(&self, ctx: &Context<'_>, id: ID, name: String) -> ApiResult<ListVersion> {
        let list_id = uuid_of("id", &id)?;
        let name = ListName::parse(&name)?;
        Ok(
            run(ctx, list_id, |actor| ListCommand::Rename { actor, name })
                .await?
                .into(),
        )
    }

    /// Archives a list (its owner): it takes no new members, and waiting
    /// invitations lapse.
    async fn archive_list(&self, ctx: &Context<'_>, id: ID) -> ApiResult<ListVersion> {
        let list_id = uuid_of("id", &id)?;
        Ok(run(ctx, list_id, |actor| ListCommand::Archive { actor })
            .await?
            .into())
    }

    /// Invites `userId` as an `EDITOR` or a `VIEWER` (the owner only). They
    /// see it in `invitations` until they answer; a list has at most 50
    /// members and waiting invitations.
    async fn invite_to_list(
        &self,
        ctx: &Context<'_>,
        list_id: ID,
        user_id: String,
        role: ListRole,
    ) -> ApiResult<InvitationReceipt> {
        let list = uuid_of("listId", &list_id)?;
        let user_id = user_of("userId", &user_id)?;
        let invitation_id = Uuid::new_v4();
        run(ctx, list, |actor| ListCommand::Invite {
            actor,
            invitation_id,
            user_id,
            role: role.into(),
        })
        .await?;
        Ok(InvitationReceipt {
            invitation_id: ID(invitation_id.to_string()),
        })
    }

    /// Joins the list an invitation of yours is for, with its role.
    async fn accept_invitation(&self, ctx: &Context<'_>, id: ID) -> ApiResult<ListVersion> {
        let invitation_id = uuid_of("id", &id)?;
        let list_id = invitation_list(ctx, invitation_id).await?;
        Ok(run(ctx, list_id, |actor| ListCommand::Accept {
            actor,
            invitation_id,
        })
        .await?
        .into())
    }

    /// Turns an invitation of yours down.
    async fn decline_invitation(&self, ctx: &Context<'_>, id: ID) -> ApiResult<ListVersion> {
        let invitation_id = uuid_of("id", &id)?;
        let list_id = invitation_list(ctx, invitation_id).await?;
        Ok(run(ctx, list_id, |actor| ListCommand::Decline {
            actor,
            invitation_id,
        })
        .await?
        .into())
    }

    /// Makes a member an `EDITOR` or a `VIEWER` (the owner only; the owner's
    /// own role changes only by `transferListOwnership`).
    async fn change_member_role(
        &self,
        ctx: &Context<'_>,
        list_id: ID,
        user_id: String,
        role: ListRole,
    ) -> ApiResult<ListVersion> {
        let list = uuid_of("listId", &list_id)?;
        let user_id = user_of("userId", &user_id)?;
        Ok(run(ctx, list, |actor| ListCommand::ChangeRole {
            actor,
            user_id,
            role: role.into(),
        })
        .await?
        .into())
    }

    /// Removes a member (the owner only). From the moment it commits they
    /// can neither read nor change the list.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        list_id: ID,
        user_id: String,
    ) -> ApiResult<ListVersion> {
        let list = uuid_of("listId", &list_id)?;
        let user_id = user_of("userId", &user_id)?;
        Ok(
            run(ctx, list, |actor| ListCommand::Remove { actor, user_id })
                .await?
                .into(),
        )
    }

    /// Leaves a list you belong to (an owner transfers it first).
    async fn leave_list(&self, ctx: &Context<'_>, list_id: ID) -> ApiResult<ListVersion> {
        let list = uuid_of("listId", &list_id)?;
        Ok(run(ctx, list, |actor| ListCommand::Leave { actor })
            .await?
            .into())
    }

    /// Hands the list to another member (the owner only); you stay as an
    /// editor.
    async fn transfer_list_ownership(
        &self,
        ctx: &Context<'_>,
        list_id: ID,
        user_id: String,
    ) -> ApiResult<ListVersion> {
        let list = uuid_of("listId", &list_id)?;
        let user_id = user_of("userId", &user_id)?;
        Ok(run(ctx, list, |actor| ListCommand::TransferOwnership {
            actor,
            user_id,
        })
        .await?
        .into())
    }
}

/// The list a waiting invitation of the caller's is for; another's, an
/// answered one or an unknown id is `NOT_FOUND`.
async fn invitation_list(ctx: &Context<'_>, invitation_id: Uuid) -> ApiResult<Uuid> {
    let actor = actor(ctx)?;
    service::<ListService>(ctx)?
        .list_of_invitation(invitation_id, actor.user_id.as_str())
        .await?
        .ok_or(ApiError::NoSuchResource("invitation"))
}
