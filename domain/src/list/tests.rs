use super::*;

fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

fn decide(list: &List, command: ListCommand) -> Result<Option<ListEvent>, ListError> {
    list.decide(command, &TaskServices::default())
}

/// Applies what `command` decides; panics on a refusal.
fn run(list: &mut List, command: ListCommand) {
    if let Some(event) = decide(list, command).unwrap() {
        list.apply(event);
    }
}

fn invite(list: &mut List, actor: &str, who: &str, role: Role) -> Uuid {
    let invitation_id = Uuid::new_v4();
    run(
        list,
        ListCommand::Invite {
            actor: user(actor),
            invitation_id,
            user_id: user(who),
            role,
        },
    );
    invitation_id
}

/// ann owns it; eve edits; vic views; ivy is invited as an editor.
fn shared() -> List {
    let mut list = List::default();
    run(
        &mut list,
        ListCommand::Create {
            list_id: Uuid::new_v4(),
            owner: user("ann"),
            name: ListName::parse("Groceries").unwrap(),
        },
    );
    for (who, role) in [("eve", Role::Editor), ("vic", Role::Viewer)] {
        let id = invite(&mut list, "ann", who, role);
        run(
            &mut list,
            ListCommand::Accept {
                actor: user(who),
                invitation_id: id,
            },
        );
    }
    invite(&mut list, "ann", "ivy", Role::Editor);
    list
}

#[test]
fn an_accepted_invitation_makes_a_member_with_its_role() {
    let list = shared();
    assert_eq!(list.role_of(&user("ann")), Some(Role::Owner));
    assert_eq!(list.role_of(&user("eve")), Some(Role::Editor));
    assert_eq!(list.role_of(&user("vic")), Some(Role::Viewer));
    assert_eq!(list.role_of(&user("ivy")), None, "invited is not a member");
    assert_eq!(list.invitations().count(), 1);
    assert_eq!(list.owner(), Some(&user("ann")));
}

#[test]
fn only_the_owner_manages_members_and_a_stranger_sees_nothing() {
    let list = shared();
    let manage = |actor: &str| {
        [
            ListCommand::Invite {
                actor: user(actor),
                invitation_id: Uuid::new_v4(),
                user_id: user("zed"),
                role: Role::Viewer,
            },
            ListCommand::ChangeRole {
                actor: user(actor),
                user_id: user("vic"),
                role: Role::Editor,
            },
            ListCommand::Remove {
                actor: user(actor),
                user_id: user("vic"),
            },
            ListCommand::TransferOwnership {
                actor: user(actor),
                user_id: user("vic"),
            },
            ListCommand::Archive { actor: user(actor) },
        ]
    };
    for command in manage("ann") {
        assert!(decide(&list, command).unwrap().is_some());
    }
    for actor in ["eve", "vic"] {
        for command in manage(actor) {
            assert!(
                matches!(decide(&list, command.clone()), Err(ListError::Forbidden(_))),
                "{actor}: {command:?}"
            );
        }
    }
    // Invited but not accepted, and a stranger: the list does not exist for them.
    for actor in ["ivy", "zed"] {
        for command in manage(actor) {
            assert_eq!(decide(&list, command), Err(ListError::NotFound));
        }
        assert_eq!(
            decide(&list, ListCommand::Leave { actor: user(actor) }),
            Err(ListError::NotFound)
        );
    }
}

#[test]
fn an_editor_renames_and_a_viewer_does_not() {
    let list = shared();
    let rename = |actor: &str| ListCommand::Rename {
        actor: user(actor),
        name: ListName::parse("Shopping").unwrap(),
    };
    assert!(decide(&list, rename("eve")).unwrap().is_some());
    assert!(matches!(
        decide(&list, rename("vic")),
        Err(ListError::Forbidden(_))
    ));
    assert_eq!(decide(&list, rename("zed")), Err(ListError::NotFound));
}

#[test]
fn a_list_always_has_one_owner() {
    let mut list = shared();
    assert!(matches!(
        decide(&list, ListCommand::Leave { actor: user("ann") }),
        Err(ListError::Refused(_))
    ));
    assert!(matches!(
        decide(
            &list,
            ListCommand::Remove {
                actor: user("ann"),
                user_id: user("ann")
            }
        ),
        Err(ListError::Refused(_))
    ));
    assert!(matches!(
        decide(
            &list,
            ListCommand::ChangeRole {
                actor: user("ann"),
                user_id: user("eve"),
                role: Role::Owner
            }
        ),
        Err(ListError::Refused(_))
    ));
    // Ownership goes to a member only; the old owner stays as an editor.
    assert!(matches!(
        decide(
            &list,
            ListCommand::TransferOwnership {
                actor: user("ann"),
                user_id: user("ivy")
            }
        ),
        Err(ListError::Refused(_))
    ));
    run(
        &mut list,
        ListCommand::TransferOwnership {
            actor: user("ann"),
            user_id: user("eve"),
        },
    );
    assert_eq!(list.owner(), Some(&user("eve")));
    assert_eq!(list.role_of(&user("ann")), Some(Role::Editor));
    assert_eq!(list.members().filter(|(_, r)| *r == Role::Owner).count(), 1);
    run(&mut list, ListCommand::Leave { actor: user("ann") });
    assert_eq!(list.role_of(&user("ann")), None);
}

#[test]
fn an_invitation_is_answered_only_by_its_invitee_and_once() {
    let mut list = shared();
    let (id, _) = list
        .invitations()
        .next()
        .map(|(id, i)| (*id, i.clone()))
        .unwrap();
    for actor in ["ann", "eve", "zed"] {
        assert_eq!(
            decide(
                &list,
                ListCommand::Accept {
                    actor: user(actor),
                    invitation_id: id
                }
            ),
            Err(ListError::InvitationNotFound)
        );
    }
    run(
        &mut list,
        ListCommand::Decline {
            actor: user("ivy"),
            invitation_id: id,
        },
    );
    assert_eq!(
        decide(
            &list,
            ListCommand::Accept {
                actor: user("ivy"),
                invitation_id: id
            }
        ),
        Err(ListError::InvitationNotFound)
    );
    assert_eq!(list.role_of(&user("ivy")), None);
}

#[test]
fn members_and_invitations_are_bounded_and_not_repeated() {
    let mut list = shared();
    let again = ListCommand::Invite {
        actor: user("ann"),
        invitation_id: Uuid::new_v4(),
        user_id: user("eve"),
        role: Role::Viewer,
    };
    assert!(matches!(decide(&list, again), Err(ListError::Refused(_))));
    let owner_invite = ListCommand::Invite {
        actor: user("ann"),
        invitation_id: Uuid::new_v4(),
        user_id: user("new"),
        role: Role::Owner,
    };
    assert!(matches!(
        decide(&list, owner_invite),
        Err(ListError::Refused(_))
    ));
    let mut n = 0;
    while list.members().count() + list.invitations().count() < MAX_MEMBERS {
        invite(&mut list, "ann", &format!("guest{n}"), Role::Viewer);
        n += 1;
    }
    let one_more = ListCommand::Invite {
        actor: user("ann"),
        invitation_id: Uuid::new_v4(),
        user_id: user("late"),
        role: Role::Viewer,
    };
    assert_eq!(decide(&list, one_more), Err(ListError::TooManyMembers));
}

#[test]
fn a_removed_member_can_do_nothing_and_an_archived_list_takes_no_one_new() {
    let mut list = shared();
    run(
        &mut list,
        ListCommand::Remove {
            actor: user("ann"),
            user_id: user("eve"),
        },
    );
    assert_eq!(
        decide(
            &list,
            ListCommand::Rename {
                actor: user("eve"),
                name: ListName::parse("mine now").unwrap()
            }
        ),
        Err(ListError::NotFound)
    );
    run(&mut list, ListCommand::Archive { actor: user("ann") });
    assert_eq!(list.invitations().count(), 0, "archiving drops invitations");
    assert_eq!(
        decide(
            &list,
            ListCommand::Invite {
                actor: user("ann"),
                invitation_id: Uuid::new_v4(),
                user_id: user("eve"),
                role: Role::Editor
            }
        ),
        Err(ListError::Archived)
    );
    assert_eq!(
        decide(&list, ListCommand::Archive { actor: user("ann") }),
        Ok(None),
        "archiving twice records nothing"
    );
}

#[test]
fn names_are_validated() {
    assert!(ListName::parse("  ").is_err());
    assert!(ListName::parse(&"x".repeat(101)).is_err());
    assert!(ListName::parse("a\u{7}b").is_err());
    assert_eq!(ListName::parse(" Home ").unwrap().as_str(), "Home");
}

#[test]
fn a_list_folds_back_from_its_events_as_json() {
    let list = shared();
    let json = serde_json::to_value(&list).unwrap();
    let back: List = serde_json::from_value(json).unwrap();
    assert_eq!(back, list);
}
