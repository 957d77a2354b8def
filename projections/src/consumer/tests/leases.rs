//! How the partitions are shared among a projection's processes.

use uuid::Uuid;

use super::super::leases::share;

fn members(count: u128) -> Vec<Uuid> {
    (1..=count).map(Uuid::from_u128).collect()
}

#[test]
fn one_member_applies_every_partition() {
    let only = members(1);
    assert_eq!(share(3, &only, only[0]), [0, 1, 2]);
}

#[test]
fn every_partition_has_exactly_one_member_and_shares_differ_by_at_most_one() {
    for count in 1..=5 {
        let all = members(count);
        for partitions in [1, 3, 32] {
            let shares: Vec<Vec<i32>> = all.iter().map(|&m| share(partitions, &all, m)).collect();
            let mut every: Vec<i32> = shares.concat();
            every.sort_unstable();
            assert_eq!(
                every,
                (0..partitions).collect::<Vec<_>>(),
                "{count} members"
            );
            let sizes: Vec<usize> = shares.iter().map(Vec::len).collect();
            let (least, most) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(most - least <= 1, "{sizes:?}");
        }
    }
}

#[test]
fn more_members_than_partitions_leaves_some_idle() {
    let all = members(4);
    assert_eq!(share(3, &all, all[3]), Vec::<i32>::new());
    assert_eq!(share(3, &all, all[2]), [2]);
}

#[test]
fn a_process_that_is_not_a_member_applies_nothing() {
    assert_eq!(
        share(3, &members(2), Uuid::from_u128(99)),
        Vec::<i32>::new()
    );
}
