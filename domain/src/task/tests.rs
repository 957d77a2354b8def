//! The task aggregate's decisions and folds, given events and commands.

use std::sync::Arc;

use chrono::TimeZone as _;
use cqrs_es::test::TestFramework;

use super::*;
use crate::values::{Recurrence, Reminder, TaskDescription, TaskTitle, TimeZone};
use crate::{Clock, NewTask, ValidationError};

struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap()
}

fn task() -> TestFramework<Task> {
    TestFramework::with(TaskServices::new(Arc::new(FixedClock(now()))))
}

fn alice() -> UserId {
    UserId::parse("alice").unwrap()
}

fn bob() -> UserId {
    UserId::parse("bob").unwrap()
}

fn id() -> TaskId {
    TaskId::parse("0192f0c1-0000-7000-8000-000000000001").unwrap()
}

fn created() -> TaskEvent {
    TaskEvent::TaskCreated {
        task_id: id(),
        user_id: alice(),
        title: "Buy milk".into(),
        description: None,
        created_at: now(),
        priority: Priority::None,
        tags: TagSet::default(),
        due: None,
        reminders: Reminders::default(),
        series: None,
        list_id: None,
    }
}

fn deleted() -> TaskEvent {
    TaskEvent::TaskDeleted { deleted_at: now() }
}

fn completed() -> TaskEvent {
    TaskEvent::TaskCompleted {
        completed_at: now(),
        next_occurrence: None,
        stopped_repeating: false,
    }
}

#[test]
fn create_records_the_task() {
    task()
        .given_no_previous_events()
        .when(TaskCommand::Create {
            task_id: id(),
            owner: alice(),
            title: TaskTitle::parse("Buy milk").unwrap(),
            details: NewTask::default(),
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn create_twice_is_refused() {
    task()
        .given(vec![created()])
        .when(TaskCommand::Create {
            task_id: id(),
            owner: alice(),
            title: TaskTitle::parse("Again").unwrap(),
            details: NewTask::default(),
        })
        .then_expect_error(TaskError::AlreadyExists);
}

#[test]
fn edit_records_what_changed_and_nothing_else() {
    task()
        .given(vec![created()])
        .when(TaskCommand::Edit {
            actor: alice(),
            title: None,
            description: Some(Some(TaskDescription::parse("2 litres").unwrap())),
        })
        .then_expect_events(vec![TaskEvent::TaskEdited {
            title: None,
            description: Some(Some("2 litres".into())),
            edited_at: now(),
        }]);
    // The title given again as it is: only the description is carried.
    task()
        .given(vec![created()])
        .when(TaskCommand::Edit {
            actor: alice(),
            title: Some(TaskTitle::parse("Buy milk").unwrap()),
            description: Some(None),
        })
        .then_expect_events(vec![]);
    task()
        .given(vec![created()])
        .when(TaskCommand::Edit {
            actor: alice(),
            title: Some(TaskTitle::parse("Buy oat milk").unwrap()),
            description: Some(Some(TaskDescription::parse("2 litres").unwrap())),
        })
        .then_expect_events(vec![TaskEvent::TaskEdited {
            title: Some("Buy oat milk".into()),
            description: Some(Some("2 litres".into())),
            edited_at: now(),
        }]);
}

/// Version 1 carried both fields, which read as both set; version 2 leaves
/// out what did not change, and `null` still clears the description.
#[test]
fn an_edit_of_either_version_reads_as_what_it_sets() {
    let read = |payload: serde_json::Value| -> TaskEvent {
        serde_json::from_value(serde_json::json!({ "TaskEdited": payload })).unwrap()
    };
    let at = "2026-01-01T00:00:00Z";
    let both = read(serde_json::json!({"title": "a", "description": null, "edited_at": at}));
    let TaskEvent::TaskEdited {
        title, description, ..
    } = &both
    else {
        unreachable!()
    };
    assert_eq!((title.as_deref(), description), (Some("a"), &Some(None)));
    let only = read(serde_json::json!({"description": "b", "edited_at": at}));
    let TaskEvent::TaskEdited {
        title, description, ..
    } = &only
    else {
        unreachable!()
    };
    assert_eq!((title, description), (&None, &Some(Some("b".to_owned()))));
    assert_eq!(
        (only.version(), cqrs_es::DomainEvent::event_version(&only)),
        (2, "2.0".to_owned()),
        "stored as the version it is written in"
    );
    let written = serde_json::to_value(&only).unwrap();
    assert_eq!(
        written,
        serde_json::json!({"TaskEdited": {"description": "b", "edited_at": at}})
    );
    let mut task = folded(vec![created()]);
    task.apply(only);
    assert_eq!((task.title(), task.description()), ("Buy milk", Some("b")));
    task.apply(both);
    assert_eq!((task.title(), task.description()), ("a", None));
}

#[test]
fn edit_that_changes_nothing_records_nothing() {
    task()
        .given(vec![created()])
        .when(TaskCommand::Edit {
            actor: alice(),
            title: Some(TaskTitle::parse("Buy milk").unwrap()),
            description: None,
        })
        .then_expect_events(vec![]);
}

#[test]
fn editing_a_missing_task_is_not_found() {
    task()
        .given_no_previous_events()
        .when(TaskCommand::Edit {
            actor: alice(),
            title: Some(TaskTitle::parse("x").unwrap()),
            description: None,
        })
        .then_expect_error(TaskError::NotFound);
}

#[test]
fn revert_carries_the_earlier_values_and_records_nothing_when_they_hold() {
    let edited = TaskEvent::TaskEdited {
        title: Some("Buy oat milk".into()),
        description: Some(Some("the barista kind".into())),
        edited_at: now(),
    };
    task()
        .given(vec![created(), edited.clone(), completed()])
        .when(TaskCommand::Revert {
            actor: alice(),
            to_version: 1,
            earlier: Box::new(folded(vec![created()])),
        })
        .then_expect_events(vec![TaskEvent::TaskReverted {
            to_version: 1,
            title: "Buy milk".into(),
            description: None,
            priority: Priority::None,
            tags: TagSet::default(),
            due: None,
            reminders: Reminders::default(),
            completed: false,
            at: now(),
        }]);
    task()
        .given(vec![created(), edited.clone()])
        .when(TaskCommand::Revert {
            actor: alice(),
            to_version: 2,
            earlier: Box::new(folded(vec![created(), edited])),
        })
        .then_expect_events(vec![]);
    for actor in [bob(), alice()] {
        let expected = if actor == alice() {
            TaskError::Deleted
        } else {
            TaskError::NotFound
        };
        task()
            .given(vec![created(), deleted()])
            .when(TaskCommand::Revert {
                actor,
                to_version: 1,
                earlier: Box::new(folded(vec![created()])),
            })
            .then_expect_error(expected);
    }
}

#[test]
fn another_user_cannot_touch_the_task() {
    for command in [
        TaskCommand::Complete {
            actor: bob(),
            stop_repeating: false,
        },
        TaskCommand::Reopen { actor: bob() },
        TaskCommand::Delete { actor: bob() },
        TaskCommand::Edit {
            actor: bob(),
            title: Some(TaskTitle::parse("mine now").unwrap()),
            description: None,
        },
    ] {
        task()
            .given(vec![created()])
            .when(command)
            .then_expect_error(TaskError::NotFound);
    }
}

fn shared() -> Uuid {
    Uuid::from_u128(7)
}

fn moved(to: Option<Uuid>, owner: UserId) -> TaskEvent {
    TaskEvent::TaskMoved {
        list_id: to,
        owner,
        at: now(),
    }
}

#[test]
fn another_user_cannot_move_or_assign_a_task_in_an_inbox() {
    for command in [
        TaskCommand::Move {
            actor: bob(),
            to: Some(shared()),
        },
        TaskCommand::Assign {
            actor: bob(),
            assignee: Some(bob()),
        },
    ] {
        task()
            .given(vec![created()])
            .when(command)
            .then_expect_error(TaskError::NotFound);
    }
}

#[test]
fn in_a_shared_list_the_commit_checks_the_writer() {
    let in_shared = folded(vec![created(), moved(Some(shared()), alice())]);
    let edit = TaskCommand::Complete {
        actor: bob(),
        stop_repeating: false,
    };
    assert_eq!(in_shared.lists_to_check(&edit), vec![shared()]);
    // The aggregate lets any writer decide; the commit refuses a stranger.
    task()
        .given(vec![created(), moved(Some(shared()), alice())])
        .when(edit)
        .then_expect_events(vec![completed()]);
    // An Inbox is checked by the aggregate, so nothing is left to the commit.
    assert!(folded(vec![created()])
        .lists_to_check(&TaskCommand::Reopen { actor: alice() })
        .is_empty());
    let other = Uuid::from_u128(8);
    assert_eq!(
        in_shared.lists_to_check(&TaskCommand::Move {
            actor: bob(),
            to: Some(other)
        }),
        vec![shared(), other]
    );
}

#[test]
fn a_move_to_an_inbox_gives_the_task_to_the_mover_and_unassigns_it() {
    let mut state = folded(vec![created(), moved(Some(shared()), alice())]);
    state.apply(TaskEvent::TaskAssigned {
        assignee: Some(alice()),
        at: now(),
    });
    assert_eq!(state.assignee(), Some(&alice()));
    let events = futures_free_handle(
        &mut state,
        TaskCommand::Move {
            actor: bob(),
            to: None,
        },
    )
    .unwrap();
    assert_eq!(events, vec![moved(None, bob())]);
    state.apply(moved(None, bob()));
    assert_eq!(
        (state.owner(), state.list(), state.assignee()),
        (Some(&bob()), None, None)
    );
    // Back where it is: nothing to record.
    assert!(futures_free_handle(
        &mut state,
        TaskCommand::Move {
            actor: bob(),
            to: None
        }
    )
    .unwrap()
    .is_empty());
}

#[test]
fn in_an_inbox_only_its_owner_can_be_assigned() {
    task()
        .given(vec![created()])
        .when(TaskCommand::Assign {
            actor: alice(),
            assignee: Some(bob()),
        })
        .then_expect_error(TaskError::Validation(ValidationError::new(
            "userId",
            "must be a member of the task's list",
        )));
    task()
        .given(vec![created()])
        .when(TaskCommand::Assign {
            actor: alice(),
            assignee: Some(alice()),
        })
        .then_expect_events(vec![TaskEvent::TaskAssigned {
            assignee: Some(alice()),
            at: now(),
        }]);
}

#[test]
fn complete_records_completion() {
    task()
        .given(vec![created()])
        .when(TaskCommand::Complete {
            actor: alice(),
            stop_repeating: false,
        })
        .then_expect_events(vec![completed()]);
}

#[test]
fn completing_a_completed_task_records_nothing() {
    task()
        .given(vec![created(), completed()])
        .when(TaskCommand::Complete {
            actor: alice(),
            stop_repeating: false,
        })
        .then_expect_events(vec![]);
}

#[test]
fn completing_a_deleted_task_is_refused() {
    task()
        .given(vec![created(), deleted()])
        .when(TaskCommand::Complete {
            actor: alice(),
            stop_repeating: false,
        })
        .then_expect_error(TaskError::Deleted);
}

#[test]
fn reopen_records_reopening_of_a_completed_task() {
    task()
        .given(vec![created(), completed()])
        .when(TaskCommand::Reopen { actor: alice() })
        .then_expect_events(vec![TaskEvent::TaskReopened { reopened_at: now() }]);
}

#[test]
fn reopening_an_open_task_records_nothing() {
    task()
        .given(vec![created()])
        .when(TaskCommand::Reopen { actor: alice() })
        .then_expect_events(vec![]);
}

#[test]
fn editing_a_deleted_task_is_refused() {
    task()
        .given(vec![created(), deleted()])
        .when(TaskCommand::Edit {
            actor: alice(),
            title: Some(TaskTitle::parse("x").unwrap()),
            description: None,
        })
        .then_expect_error(TaskError::Deleted);
}

#[test]
fn delete_records_deletion_once() {
    task()
        .given(vec![created()])
        .when(TaskCommand::Delete { actor: alice() })
        .then_expect_events(vec![deleted()]);
    task()
        .given(vec![created(), deleted()])
        .when(TaskCommand::Delete { actor: alice() })
        .then_expect_events(vec![]);
}

#[test]
fn deleting_a_missing_task_is_not_found() {
    task()
        .given_no_previous_events()
        .when(TaskCommand::Delete { actor: alice() })
        .then_expect_error(TaskError::NotFound);
}

#[test]
fn apply_folds_the_history() {
    let mut state = Task::default();
    for event in [created(), completed(), deleted()] {
        state.apply(event);
    }
    assert_eq!(state.id(), Some(id()));
    assert_eq!(state.owner(), Some(&alice()));
    assert_eq!(state.status(), TaskStatus::Deleted);
    assert!(state.is_deleted());
    state.apply(TaskEvent::TaskRestored { restored_at: now() });
    assert_eq!(
        state.status(),
        TaskStatus::Completed,
        "restoring keeps it done"
    );
}

fn berlin_nine(day: u32) -> DateTime<Utc> {
    TimeZone::parse("Europe/Berlin")
        .unwrap()
        .tz()
        .with_ymd_and_hms(2026, 3, day, 9, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn daily() -> NewTask {
    NewTask {
        due: Some(Due::at(
            berlin_nine(27),
            TimeZone::parse("Europe/Berlin").unwrap(),
        )),
        reminders: vec![Reminder::MinutesBefore(30)],
        recurrence: Some(Recurrence::parse("FREQ=DAILY").unwrap()),
        ..NewTask::default()
    }
}

fn created_daily() -> TaskEvent {
    created_from(daily())
}

/// The creation event `handle` decides for a "Stand-up" with `details`.
fn created_from(details: NewTask) -> TaskEvent {
    let mut state = Task::default();
    let events = futures_free_handle(
        &mut state,
        TaskCommand::Create {
            task_id: id(),
            owner: alice(),
            title: TaskTitle::parse("Stand-up").unwrap(),
            details,
        },
    )
    .unwrap();
    events.into_iter().next().unwrap()
}

/// Runs `handle` without a database, as the framework would.
fn futures_free_handle(
    state: &mut Task,
    command: TaskCommand,
) -> Result<Vec<TaskEvent>, TaskError> {
    state
        .decide(command, &TaskServices::new(Arc::new(FixedClock(now()))))
        .map(|e| e.into_iter().collect())
}

#[test]
fn creating_a_recurring_task_starts_a_series_at_its_due_time() {
    let TaskEvent::TaskCreated {
        series: Some(series),
        ..
    } = created_daily()
    else {
        panic!("no series");
    };
    assert_eq!(series.occurrence, 1);
    assert_eq!(series.start, berlin_nine(27));
    assert_eq!(
        series.id,
        Uuid::new_v5(&TASKLEDGER_NAMESPACE, id().to_string().as_bytes())
    );
}

#[test]
fn completing_an_occurrence_names_the_next_one_across_a_dst_change() {
    // 27 March 09:00 CET; the clocks go forward on 29 March in Berlin.
    let events = task()
        .given(vec![created_daily()])
        .when(TaskCommand::Complete {
            actor: alice(),
            stop_repeating: false,
        })
        .inspect_result()
        .unwrap();
    let TaskEvent::TaskCompleted {
        next_occurrence: Some(next),
        ..
    } = &events[0]
    else {
        panic!("no next occurrence: {events:?}");
    };
    assert_eq!(next.due.instant(), berlin_nine(28));
    assert_eq!(next.series.occurrence, 2);
    let series = Uuid::new_v5(&TASKLEDGER_NAMESPACE, id().to_string().as_bytes());
    assert_eq!(next.task_id, occurrence_id(series, 2));
    // Everything the next task starts with is decided here.
    assert_eq!(next.owner, alice());
    assert_eq!(next.title, "Stand-up");
    assert_eq!(next.series.id, series);
}

/// The completion `handle` decides for a new recurring task with `due`
/// and `rule`, completed once.
fn first_completion(due: Due, rule: &str) -> Option<TaskEvent> {
    let mut state = Task::default();
    let services = TaskServices::new(Arc::new(FixedClock(now())));
    let created = state
        .decide(
            TaskCommand::Create {
                task_id: id(),
                owner: alice(),
                title: TaskTitle::parse("Repeats").unwrap(),
                details: NewTask {
                    due: Some(due),
                    recurrence: Some(Recurrence::parse(rule).unwrap()),
                    ..NewTask::default()
                },
            },
            &services,
        )
        .unwrap()
        .unwrap();
    state.apply(created);
    state
        .decide(
            TaskCommand::Complete {
                actor: alice(),
                stop_repeating: false,
            },
            &services,
        )
        .unwrap()
}

#[test]
fn a_series_ends_where_its_next_due_date_could_not_be_stored() {
    let last_year = Utc.with_ymd_and_hms(9999, 6, 1, 9, 0, 0).unwrap();
    let completed = first_completion(Due::at(last_year, TimeZone::UTC), "FREQ=YEARLY");
    assert!(
        matches!(
            completed,
            Some(TaskEvent::TaskCompleted {
                next_occurrence: None,
                ..
            })
        ),
        "year 10000 is past what can be stored: {completed:?}"
    );
}

#[test]
fn re_completing_after_a_reopen_names_no_second_successor() {
    let first = task()
        .given(vec![created_daily()])
        .when(TaskCommand::Complete {
            actor: alice(),
            stop_repeating: false,
        })
        .inspect_result()
        .unwrap();
    let mut history = vec![created_daily()];
    history.extend(first);
    history.push(TaskEvent::TaskReopened { reopened_at: now() });
    task()
        .given(history)
        .when(TaskCommand::Complete {
            actor: alice(),
            stop_repeating: false,
        })
        .then_expect_events(vec![completed()]);
}

#[test]
fn complete_and_stop_repeating_ends_the_series() {
    task()
        .given(vec![created_daily()])
        .when(TaskCommand::Complete {
            actor: alice(),
            stop_repeating: true,
        })
        .then_expect_events(vec![TaskEvent::TaskCompleted {
            completed_at: now(),
            next_occurrence: None,
            stopped_repeating: true,
        }]);
}

#[test]
fn recurrence_and_offset_reminders_need_a_due_date() {
    let refusal = |details: NewTask| {
        task()
            .given_no_previous_events()
            .when(TaskCommand::Create {
                task_id: id(),
                owner: alice(),
                title: TaskTitle::parse("x").unwrap(),
                details,
            })
            .inspect_result()
            .unwrap_err()
    };
    let no_due = NewTask {
        due: None,
        ..daily()
    };
    assert!(
        matches!(refusal(no_due), TaskError::Validation(e) if e.field == "reminders" || e.field == "recurrence")
    );
    let only_offset = NewTask {
        reminders: vec![Reminder::MinutesBefore(5)],
        ..NewTask::default()
    };
    assert!(matches!(refusal(only_offset), TaskError::Validation(e) if e.field == "reminders"));
    let until_before = NewTask {
        recurrence: Some(Recurrence::parse("FREQ=DAILY;UNTIL=20200101T000000Z").unwrap()),
        ..daily()
    };
    assert!(matches!(refusal(until_before), TaskError::Validation(e) if e.field == "recurrence"));
}

#[test]
fn the_due_date_of_a_recurring_task_cannot_be_cleared() {
    let recurring_without_reminders = NewTask {
        reminders: vec![],
        ..daily()
    };
    task()
        .given(vec![created_from(recurring_without_reminders)])
        .when(TaskCommand::ClearDueDate { actor: alice() })
        .then_expect_error(TaskError::Validation(ValidationError::new(
            "due",
            "a recurring task needs a due date; clear the recurrence first",
        )));
}

#[test]
fn the_due_date_cannot_be_cleared_while_reminders_are_relative_to_it() {
    let one_off_with_offset_reminder = NewTask {
        recurrence: None,
        ..daily()
    };
    task()
        .given(vec![created_from(one_off_with_offset_reminder)])
        .when(TaskCommand::ClearDueDate { actor: alice() })
        .then_expect_error(TaskError::Validation(ValidationError::new(
            "due",
            "reminders relative to the due time need it; change them first",
        )));
}

#[test]
fn tags_are_added_and_removed_as_a_whole_set() {
    task()
        .given(vec![created()])
        .when(TaskCommand::AddTags {
            actor: alice(),
            tags: TagSet::parse(&["Work/Clients", "home"]).unwrap(),
        })
        .then_expect_events(vec![TaskEvent::TaskTagsChanged {
            tags: TagSet::parse(&["home", "work/clients"]).unwrap(),
            at: now(),
        }]);
    let twenty: Vec<String> = (0..20).map(|n| format!("t{n}")).collect();
    task()
        .given(vec![
            created(),
            TaskEvent::TaskTagsChanged {
                tags: TagSet::parse(&twenty).unwrap(),
                at: now(),
            },
        ])
        .when(TaskCommand::AddTags {
            actor: alice(),
            tags: TagSet::parse(&["one-more"]).unwrap(),
        })
        .then_expect_error(TaskError::Validation(ValidationError::new(
            "tags",
            "a task has at most 20 tags",
        )));
}

#[test]
fn priority_changes_record_only_real_changes() {
    task()
        .given(vec![created()])
        .when(TaskCommand::SetPriority {
            actor: alice(),
            priority: Priority::High,
        })
        .then_expect_events(vec![TaskEvent::TaskPrioritySet {
            priority: Priority::High,
            at: now(),
        }]);
    task()
        .given(vec![created()])
        .when(TaskCommand::SetPriority {
            actor: alice(),
            priority: Priority::None,
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_deleted_task_can_be_restored() {
    task()
        .given(vec![created(), deleted()])
        .when(TaskCommand::Restore { actor: alice() })
        .then_expect_events(vec![TaskEvent::TaskRestored { restored_at: now() }]);
    task()
        .given(vec![created()])
        .when(TaskCommand::Restore { actor: alice() })
        .then_expect_events(vec![]);
}

#[test]
fn an_all_day_weekly_task_repeats_on_its_own_weekday() {
    let zone = TimeZone::parse("America/New_York").unwrap();
    let monday = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let Some(TaskEvent::TaskCompleted {
        next_occurrence: Some(next),
        ..
    }) = first_completion(Due::all_day(monday, zone), "FREQ=WEEKLY;BYDAY=MO")
    else {
        panic!("no next occurrence");
    };
    assert_eq!(
        next.due.date(),
        chrono::NaiveDate::from_ymd_opt(2026, 1, 12)
    );
}

#[test]
fn adding_tags_already_there_records_nothing() {
    task()
        .given(vec![
            created(),
            TaskEvent::TaskTagsChanged {
                tags: TagSet::parse(&["home"]).unwrap(),
                at: now(),
            },
        ])
        .when(TaskCommand::AddTags {
            actor: alice(),
            tags: TagSet::parse(&["HOME"]).unwrap(),
        })
        .then_expect_events(vec![]);
    task()
        .given(vec![created()])
        .when(TaskCommand::RemoveTags {
            actor: alice(),
            tags: TagSet::parse(&["absent"]).unwrap(),
        })
        .then_expect_events(vec![]);
}

/// The task after `events`, folded as the aggregate does.
fn folded(events: Vec<TaskEvent>) -> Task {
    let mut state = Task::default();
    for event in events {
        state.apply(event);
    }
    state
}

#[test]
fn the_reminder_schedule_follows_the_due_date_and_ends_with_the_task() {
    let schedule = folded(vec![created_daily()]).reminder_schedule();
    assert_eq!(schedule.len(), 1);
    assert_eq!(
        schedule[0].remind_at,
        berlin_nine(27) - chrono::Duration::minutes(30)
    );
    // The same state always names the same reminder.
    assert_eq!(folded(vec![created_daily()]).reminder_schedule(), schedule);

    let berlin = TimeZone::parse("Europe/Berlin").unwrap();
    let moved = folded(vec![
        created_daily(),
        TaskEvent::TaskDueDateSet {
            due: Due::at(berlin_nine(28), berlin),
            at: now(),
        },
    ])
    .reminder_schedule();
    assert_eq!(
        moved[0].remind_at,
        berlin_nine(28) - chrono::Duration::minutes(30)
    );
    assert_ne!(moved[0].reminder_id, schedule[0].reminder_id);

    assert!(folded(vec![created_daily(), completed()])
        .reminder_schedule()
        .is_empty());
    assert!(folded(vec![created_daily(), deleted()])
        .reminder_schedule()
        .is_empty());
    assert!(folded(vec![created()]).reminder_schedule().is_empty());
}

/// The due instant and the reminder of the occurrence after a daily task
/// due at `local` (a Berlin wall-clock time) is completed.
fn next_occurrence_in_berlin(local: chrono::NaiveDateTime) -> (Due, Vec<ScheduledReminder>) {
    let berlin = TimeZone::parse("Europe/Berlin").unwrap();
    let due = berlin
        .tz()
        .from_local_datetime(&local)
        .single()
        .unwrap()
        .with_timezone(&Utc);
    let mut state = folded(vec![created_from(NewTask {
        due: Some(Due::at(due, berlin)),
        reminders: vec![Reminder::MinutesBefore(30)],
        recurrence: Some(Recurrence::parse("FREQ=DAILY").unwrap()),
        ..NewTask::default()
    })]);
    let events = futures_free_handle(
        &mut state,
        TaskCommand::Complete {
            actor: alice(),
            stop_repeating: false,
        },
    )
    .unwrap();
    let TaskEvent::TaskCompleted {
        next_occurrence: Some(next),
        ..
    } = events.into_iter().next().unwrap()
    else {
        panic!("no next occurrence");
    };
    let next_task = folded(vec![TaskEvent::TaskCreated {
        task_id: next.task_id,
        user_id: next.owner,
        title: next.title,
        description: next.description,
        created_at: now(),
        priority: next.priority,
        tags: next.tags,
        due: Some(next.due),
        reminders: next.reminders,
        series: Some(next.series),
        list_id: None,
    }]);
    (next.due, next_task.reminder_schedule())
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn berlin_local(m: u32, d: u32, h: u32, min: u32) -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2027, m, d)
        .unwrap()
        .and_hms_opt(h, min, 0)
        .unwrap()
}

#[test]
fn a_reminder_in_the_spring_gap_moves_forward_as_rfc_5545_says() {
    // Berlin skips 02:00-03:00 on 28 March 2027. The next 02:30 does not
    // exist; RFC 5545 reads it with the offset before the gap (UTC+1):
    // 01:30 UTC, which is 03:30 summer time.
    let (due, schedule) = next_occurrence_in_berlin(berlin_local(3, 27, 2, 30));
    assert_eq!(due.instant(), utc(2027, 3, 28, 1, 30));
    assert_eq!(schedule[0].remind_at, utc(2027, 3, 28, 1, 0));
    // And the day after, 02:30 summer time again.
    let (due, _) = next_occurrence_in_berlin(berlin_local(3, 28, 3, 30));
    assert_eq!(due.instant(), utc(2027, 3, 29, 1, 30));
}

#[test]
fn a_reminder_in_the_autumn_overlap_takes_the_first_instant() {
    // Berlin repeats 02:00-03:00 on 31 October 2027; 02:30 happens twice
    // and the first (summer time, UTC+2) is the one: 00:30 UTC.
    let (due, schedule) = next_occurrence_in_berlin(berlin_local(10, 30, 2, 30));
    assert_eq!(due.instant(), utc(2027, 10, 31, 0, 30));
    assert_eq!(schedule[0].remind_at, utc(2027, 10, 31, 0, 0));
    let (due, _) = next_occurrence_in_berlin(berlin_local(10, 31, 9, 0));
    assert_eq!(due.instant(), utc(2027, 11, 1, 8, 0));
}
