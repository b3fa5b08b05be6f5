//! Which leases an instance takes on one pass, from one consistent view of the table (the
//! KCL's taker): expired and unowned leases first, up to its fair share; then, when none is
//! free and it is short, it steals from the instance with the most, a few at a time, only
//! from an instance over the fair share (or at it, when this one is short by 2 or more), so
//! N instances converge to an even split, within one shard, and stay there.

use std::collections::BTreeMap;

/// At most this many leases stolen on one pass.
pub(crate) const MAX_STEAL: usize = 2;

/// One lease as the taker sees it.
#[derive(Debug, Clone)]
pub(crate) struct Seen<'a> {
    pub(crate) key: &'a str,
    pub(crate) owner: Option<&'a str>,
    /// Not renewed for the failover time, as this instance observed it.
    pub(crate) expired: bool,
    /// Its parents are finished (or gone): it may be read.
    pub(crate) ready: bool,
    /// Being handed off (`checkpointOwner` set): not stolen again.
    pub(crate) handing_off: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pick {
    /// Unowned, expired, or ours from an earlier run (passed as expired).
    Take(String),
    /// From a live holder, which hands it off.
    Steal(String),
}

/// The leases `me` takes now. `leases` are the unfinished ones.
pub(crate) fn plan(me: &str, leases: &[Seen]) -> Vec<Pick> {
    // Leases waiting for their parents count for nobody.
    let active: Vec<&Seen> = leases
        .iter()
        .filter(|l| l.ready || (l.owner.is_some() && !l.expired))
        .collect();
    let mut held: BTreeMap<&str, usize> = BTreeMap::new();
    held.insert(me, 0);
    for l in &active {
        if let Some(o) = l.owner.filter(|_| !l.expired) {
            *held.entry(o).or_default() += 1;
        }
    }
    let workers = held.len();
    let target = active.len().div_ceil(workers);
    let mine = held.get(me).copied().unwrap_or(0);
    let needed = target.saturating_sub(mine);
    if needed == 0 {
        return Vec::new();
    }
    // Ours from an earlier run (the same worker_id), then unowned, then expired.
    let mut free: Vec<&Seen> = active
        .iter()
        .copied()
        .filter(|l| l.ready && (l.owner.is_none() || l.expired))
        .collect();
    free.sort_by_key(|l| (l.owner != Some(me), l.owner.is_some(), l.key));
    if !free.is_empty() {
        return free
            .into_iter()
            .take(needed)
            .map(|l| Pick::Take(l.key.to_string()))
            .collect();
    }
    // The most loaded other instance; ties to the greatest name, so every taker agrees.
    let Some((victim, count)) = held
        .iter()
        .filter(|(w, _)| **w != me)
        .max_by_key(|(w, c)| (**c, **w))
        .map(|(w, c)| (*w, *c))
    else {
        return Vec::new();
    };
    let mut steal = count.saturating_sub(target).min(MAX_STEAL);
    if steal == 0 && needed >= 2 && count > mine + 1 {
        steal = 1;
    }
    let mut theirs: Vec<&Seen> = active
        .iter()
        .copied()
        .filter(|l| l.owner == Some(victim) && l.ready && !l.handing_off)
        .collect();
    theirs.sort_by_key(|l| std::cmp::Reverse(l.key));
    theirs
        .into_iter()
        .take(steal.min(needed))
        .map(|l| Pick::Steal(l.key.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instances take and steal in turns from the same table until nothing changes.
    fn converge(workers: &[&str], shards: usize, first: &[(&str, usize)]) -> Vec<usize> {
        let keys: Vec<String> = (0..shards).map(|i| format!("shardId-{i:012}")).collect();
        let mut owner: Vec<Option<String>> = vec![None; shards];
        let mut i = 0;
        for (w, n) in first {
            for _ in 0..*n {
                owner[i] = Some(w.to_string());
                i += 1;
            }
        }
        let mut quiet = 0;
        let mut passes = 0;
        while quiet < workers.len() * 2 {
            passes += 1;
            assert!(passes < 200, "no convergence: {owner:?}");
            let w = workers[passes % workers.len()];
            let seen: Vec<Seen> = keys
                .iter()
                .zip(&owner)
                .map(|(k, o)| Seen {
                    key: k,
                    owner: o.as_deref(),
                    expired: false,
                    ready: true,
                    handing_off: false,
                })
                .collect();
            let picks = plan(w, &seen);
            if picks.is_empty() {
                quiet += 1;
            } else {
                quiet = 0;
            }
            for p in picks {
                let (Pick::Take(k) | Pick::Steal(k)) = p;
                let at = keys.iter().position(|x| *x == k).expect("known key");
                owner[at] = Some(w.to_string());
            }
        }
        let mut counts: Vec<usize> = workers
            .iter()
            .map(|w| owner.iter().filter(|o| o.as_deref() == Some(*w)).count())
            .collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        counts
    }

    #[test]
    fn instances_converge_to_an_even_split_and_stop_moving() {
        assert_eq!(converge(&["a", "b", "c"], 8, &[]), vec![3, 3, 2]);
        assert_eq!(converge(&["a", "b", "c"], 8, &[("a", 8)]), vec![3, 3, 2]);
        assert_eq!(converge(&["a", "b"], 8, &[("a", 8)]), vec![4, 4]);
        assert_eq!(
            converge(&["a", "b", "c", "d"], 2, &[("a", 2)]),
            vec![1, 1, 0, 0]
        );
        assert_eq!(
            converge(&["a", "b", "c"], 8, &[("a", 4), ("b", 4)]),
            vec![3, 3, 2]
        );
        assert_eq!(converge(&["a"], 5, &[]), vec![5]);
    }

    #[test]
    fn free_leases_go_first_and_waiting_children_count_for_nobody() {
        let l = |key, owner, expired, ready| Seen {
            key,
            owner,
            expired,
            ready,
            handing_off: false,
        };
        let leases = [
            l("s0", Some("b"), false, true),
            l("s1", Some("b"), true, true),
            l("s2", None, false, true),
            l("s3", None, false, false),
            // a's own from an earlier run: the manager passes it as expired.
            l("s4", Some("a"), true, true),
        ];
        // a's own lease of an earlier run first, then unowned, then expired.
        assert_eq!(
            plan("a", &leases),
            vec![Pick::Take("s4".into()), Pick::Take("s2".into())]
        );
        // Nothing free: c steals from b, never a lease being handed off.
        let busy = [
            l("s0", Some("b"), false, true),
            l("s1", Some("b"), false, true),
            Seen {
                handing_off: true,
                ..l("s2", Some("b"), false, true)
            },
            l("s3", Some("b"), false, true),
        ];
        assert_eq!(
            plan("c", &busy),
            vec![Pick::Steal("s3".into()), Pick::Steal("s1".into())]
        );
    }
}
