//! How far this process has heard every change: the cursor a `taskChanges`
//! client may resume from without missing one.
//!
//! Changes commit to the read model in `change_seq` order (the task list
//! writes one batch at a time, docs/adr/0012) and the publisher sends them to
//! `task-updates` in that order, but each key's partition arrives on its
//! own: a change of one list can reach this process after a later change of
//! someone's Inbox. A client handed the later cursor and cut off before the
//! earlier change arrived would resume past it. So the cursor handed with a
//! change is never past the watermark: the newest cursor such that every
//! change at or before it that the read model holds has been heard here.
//! After a batch the hub asks the read model which changes lie between the
//! watermark and the newest cursor heard; the watermark moves up to the
//! first of them not heard yet. While that one is still not heard, the read
//! model is asked again at most every [`RECHECK`].
//!
//! A change the read model holds but that never reaches this process (one
//! committed before the publisher first started, or passed over when a
//! rebuild moved the publisher's checkpoint) would hold the watermark back
//! for good: one that has not come for [`PATIENCE`] is given up on, counted
//! in `taskledger_live_watermark_skips_total`. As changes commit in
//! `change_seq` order, every change at or before the newest heard when a
//! gap is first found had committed by then: those still missing after the
//! patience are given up on together, not one patience each (a rebuild
//! leaves thousands).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use infra::metric;

/// How long a change missing below later ones holds the watermark back.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// The most cursors heard past the watermark kept; past it, the first
/// missing change is given up on at once.
const MAX_HEARD: usize = 50_000;

/// Changes looked up per query of the read model.
pub const LOOKUP_PAGE: i64 = 256;

/// How often the read model is asked again while the first change found
/// missing has not been heard: under load, changes arrive out of order all
/// the time, and asking after every batch made each ask longer (the range
/// grows while the feed falls behind) until the feed was seconds late.
/// Asked again this often, a change the read model no longer holds (its task
/// changed again) holds the watermark back this long at most.
const RECHECK: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Watermark {
    /// Every change at or before it that the read model held when last
    /// asked was heard here.
    passed: i64,
    /// Cursors heard past `passed`.
    heard: BTreeSet<i64>,
    /// The first change found missing, when it was first found so, and
    /// when the read model was last asked.
    missing: Option<Missing>,
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    /// The first change not heard.
    cursor: i64,
    /// When a change at or before `upto` was first found missing.
    since: Instant,
    asked: Instant,
    /// The newest change heard then: every change up to it had committed.
    upto: i64,
}

impl Watermark {
    /// A watermark at `passed`: the newest change the read model held when
    /// this process began reading the topic from its end (whoever subscribed
    /// before reads anything older from the read model).
    pub fn new(passed: i64) -> Self {
        Self {
            passed,
            heard: BTreeSet::new(),
            missing: None,
        }
    }

    pub fn passed(&self) -> i64 {
        self.passed
    }

    /// Notes a change heard here (and handed out).
    pub fn hear(&mut self, cursor: i64) {
        if cursor > self.passed {
            self.heard.insert(cursor);
        }
    }

    /// The cursors to look up in the read model at `now`, `(after, up_to]`:
    /// from the watermark to the newest heard; `None` when nothing heard is
    /// past the watermark, or while the change found missing is still not
    /// heard and was asked about within [`RECHECK`].
    pub fn to_look_up(&self, now: Instant) -> Option<(i64, i64)> {
        if let Some(missing) = self.missing {
            if !self.heard.contains(&missing.cursor) && now.duration_since(missing.asked) < RECHECK
            {
                return None;
            }
        }
        self.heard.last().map(|newest| (self.passed, *newest))
    }

    /// Moves the watermark past what the read model holds in the range
    /// [`Self::to_look_up`] gave: `held` are the cursors of its changes
    /// there, ascending, the first `LOOKUP_PAGE` of them when `whole` is
    /// false. Returns whether there is more to look up now.
    pub fn settle(&mut self, held: &[i64], whole: bool, now: Instant) -> bool {
        let Some(&newest) = self.heard.last() else {
            return false;
        };
        let mut gap = None;
        for &cursor in held {
            if !self.heard.contains(&cursor) {
                gap = Some(cursor);
                break;
            }
            self.passed = cursor;
        }
        match gap {
            None if whole => {
                self.passed = newest;
                self.missing = None;
            }
            None => self.missing = None,
            Some(cursor) => {
                // Everything before the first change not heard was.
                self.passed = self.passed.max(cursor - 1);
                match &mut self.missing {
                    // Committed before the first gap was found, so missing
                    // since then.
                    Some(missing) if cursor <= missing.upto => {
                        missing.cursor = cursor;
                        missing.asked = now;
                        if now.duration_since(missing.since) >= PATIENCE
                            || self.heard.len() > MAX_HEARD
                        {
                            let upto = missing.upto;
                            tracing::warn!(
                                cursor,
                                upto,
                                "changes never reached this live feed; resume cursors move past them"
                            );
                            metrics::counter!(metric::LIVE_WATERMARK_SKIPS).increment(1);
                            self.passed = upto.max(cursor);
                            self.missing = None;
                        }
                    }
                    _ => {
                        self.missing = Some(Missing {
                            cursor,
                            since: now,
                            asked: now,
                            upto: newest,
                        });
                    }
                }
            }
        }
        self.heard = self.heard.split_off(&(self.passed + 1));
        // More to look up when a page ended with no gap before the newest
        // heard, or a change was just given up on.
        !self.heard.is_empty() && self.missing.is_none() && (gap.is_some() || !whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A moment past any recheck of the tests' gaps.
    fn far() -> Instant {
        Instant::now() + PATIENCE * 10
    }

    fn heard(passed: i64, cursors: &[i64]) -> Watermark {
        let mut watermark = Watermark::new(passed);
        for cursor in cursors {
            watermark.hear(*cursor);
        }
        watermark
    }

    #[test]
    fn it_moves_to_the_newest_heard_when_nothing_is_missing() {
        // 12 was changed again (now 14): the read model no longer holds 12.
        let mut watermark = heard(10, &[11, 12, 13, 14]);
        assert_eq!(watermark.to_look_up(far()), Some((10, 14)));
        let more = watermark.settle(&[11, 13, 14], true, Instant::now());
        assert!(!more);
        assert_eq!(watermark.passed(), 14);
        assert_eq!(watermark.to_look_up(far()), None);
    }

    #[test]
    fn it_stops_before_a_change_not_heard_and_moves_on_once_it_is() {
        let now = Instant::now();
        // 12 (another key's partition) has not arrived; 13 and 15 have.
        let mut watermark = heard(10, &[11, 13, 15]);
        watermark.settle(&[11, 12, 13, 15], true, now);
        assert_eq!(watermark.passed(), 11);
        watermark.hear(12);
        let (after, newest) = watermark.to_look_up(far()).unwrap();
        assert_eq!((after, newest), (11, 15));
        watermark.settle(&[12, 13, 15], true, now);
        assert_eq!(watermark.passed(), 15);
    }

    #[test]
    fn a_change_heard_before_the_watermark_is_not_kept() {
        let watermark = heard(10, &[9, 10]);
        assert_eq!(watermark.to_look_up(far()), None);
    }

    #[test]
    fn a_change_that_never_comes_is_given_up_on_after_the_patience() {
        let start = Instant::now();
        let mut watermark = heard(10, &[12]);
        watermark.settle(&[11, 12], true, start);
        assert_eq!(watermark.passed(), 10);
        watermark.settle(&[11, 12], true, start + PATIENCE / 2);
        assert_eq!(watermark.passed(), 10, "still within the patience");
        let more = watermark.settle(&[11, 12], true, start + PATIENCE);
        assert_eq!(watermark.passed(), 12, "11 given up on, 12 heard");
        assert!(!more);
    }

    #[test]
    fn a_gap_past_the_newest_heard_when_the_first_was_found_starts_its_own_patience() {
        let start = Instant::now();
        let mut watermark = heard(10, &[12]);
        watermark.settle(&[11, 12], true, start);
        watermark.hear(11);
        watermark.hear(14);
        watermark.settle(&[11, 12, 13, 14], true, start + PATIENCE);
        assert_eq!(
            watermark.passed(),
            12,
            "13 may have committed after the first gap was found"
        );
    }

    #[test]
    fn gaps_before_the_newest_heard_when_the_first_was_found_wait_one_patience() {
        let start = Instant::now();
        let mut watermark = heard(10, &[12, 14]);
        watermark.settle(&[11, 12, 13, 14], true, start);
        watermark.hear(11);
        watermark.settle(&[11, 12, 13, 14], true, start + PATIENCE);
        assert_eq!(
            watermark.passed(),
            14,
            "13 had committed when 11 was missed"
        );
    }

    #[test]
    fn a_rebuilds_unheard_changes_are_given_up_on_together() {
        // A rebuild's rows took cursors 11..=999 and were never published.
        let start = Instant::now();
        let mut watermark = heard(10, &[1000]);
        let page: Vec<i64> = (11..11 + LOOKUP_PAGE).collect();
        watermark.settle(&page, false, start);
        assert_eq!(watermark.passed(), 10);
        watermark.settle(&page, false, start + PATIENCE);
        assert_eq!(watermark.passed(), 1000, "one patience, not one per change");
        assert_eq!(watermark.to_look_up(far()), None);
    }

    #[test]
    fn a_partial_page_moves_to_its_last_change_and_asks_for_more() {
        let mut watermark = heard(10, &[11, 12, 13, 14]);
        let more = watermark.settle(&[11, 12], false, Instant::now());
        assert!(more);
        assert_eq!(watermark.passed(), 12);
        assert_eq!(watermark.to_look_up(far()), Some((12, 14)));
    }

    #[test]
    fn a_gap_still_missing_is_not_asked_about_again_until_the_recheck() {
        let start = Instant::now();
        let mut watermark = heard(10, &[12, 13]);
        watermark.settle(&[11, 12, 13], true, start);
        watermark.hear(14);
        assert_eq!(
            watermark.to_look_up(start + RECHECK / 2),
            None,
            "11 not heard yet"
        );
        assert_eq!(watermark.to_look_up(start + RECHECK), Some((10, 14)));
        watermark.hear(11);
        assert_eq!(
            watermark.to_look_up(start + RECHECK / 2),
            Some((10, 14)),
            "11 is heard: asked at once"
        );
    }
}
