//! Snapshots encoded against an older one: [`diff`] what changed from a
//! base snapshot to the next, [`apply`] it to the base again, and the
//! [`History`] of snapshots both sides keep to find bases by tick.
//!
//! The server sends a [`SnapshotDelta`] against the newest snapshot the
//! client has acknowledged (legume's delivery feedback on
//! [`SNAPSHOT_CHANNEL`](crate::SNAPSHOT_CHANNEL) tells it which that is), and
//! a full [`Snapshot`] while there is none. An acknowledged snapshot reached
//! the client, so the client has the base in its history.

use std::collections::{BTreeMap, VecDeque};

use crate::{PlayerId, PlayerState, Snapshot, SnapshotDelta};

/// Snapshots kept, on both sides: two seconds at 30 Hz. A client whose
/// newest acknowledged snapshot is older gets a full one.
pub const HISTORY: usize = 64;

/// What changed from `base` to `next`: the players that are new or
/// differ, and the ids of those that left.
pub fn diff(base: &Snapshot, next: &Snapshot) -> SnapshotDelta {
    let before: BTreeMap<PlayerId, &PlayerState> = base.players.iter().map(|p| (p.id, p)).collect();
    let after: BTreeMap<PlayerId, &PlayerState> = next.players.iter().map(|p| (p.id, p)).collect();
    SnapshotDelta {
        tick: next.tick,
        base_tick: base.tick,
        changed: next
            .players
            .iter()
            .filter(|p| before.get(&p.id) != Some(p))
            .copied()
            .collect(),
        removed: before
            .keys()
            .filter(|id| !after.contains_key(id))
            .copied()
            .collect(),
    }
}

/// The snapshot `delta` describes, from its `base` (which must be the
/// snapshot of `delta.base_tick`); players in id order.
pub fn apply(base: &Snapshot, delta: &SnapshotDelta) -> Snapshot {
    let mut players: BTreeMap<PlayerId, PlayerState> =
        base.players.iter().map(|p| (p.id, *p)).collect();
    for id in &delta.removed {
        players.remove(id);
    }
    for p in &delta.changed {
        players.insert(p.id, *p);
    }
    Snapshot {
        tick: delta.tick,
        players: players.into_values().collect(),
    }
}

/// The last [`HISTORY`] snapshots by tick.
#[derive(Clone, Debug, Default)]
pub struct History {
    snapshots: VecDeque<Snapshot>,
}

impl History {
    /// Keeps `snapshot`, forgetting the oldest beyond [`HISTORY`]. A tick
    /// already kept is not kept twice.
    pub fn insert(&mut self, snapshot: Snapshot) {
        if self.get(snapshot.tick).is_some() {
            return;
        }
        if self.snapshots.len() == HISTORY {
            self.snapshots.pop_front();
        }
        self.snapshots.push_back(snapshot);
    }

    /// The snapshot of `tick`, if kept.
    pub fn get(&self, tick: u32) -> Option<&Snapshot> {
        self.snapshots.iter().rev().find(|s| s.tick == tick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pos;

    fn p(id: PlayerId, x: u16, last_move: u32) -> PlayerState {
        PlayerState {
            id,
            pos: Pos { x, y: 1 },
            last_move,
        }
    }

    #[test]
    fn apply_undoes_diff() {
        let base = Snapshot {
            tick: 10,
            players: vec![p(1, 1, 0), p(2, 2, 5), p(3, 3, 0)],
        };
        let next = Snapshot {
            tick: 14,
            players: vec![p(1, 1, 0), p(2, 3, 6), p(4, 9, 0)],
        };
        let d = diff(&base, &next);
        assert_eq!(d.changed, vec![p(2, 3, 6), p(4, 9, 0)]);
        assert_eq!(d.removed, vec![3]);
        assert_eq!(apply(&base, &d), next);
        // Nothing changed: an empty delta.
        let same = diff(
            &next,
            &Snapshot {
                tick: 15,
                ..next.clone()
            },
        );
        assert!(same.changed.is_empty() && same.removed.is_empty());
    }

    #[test]
    fn history_keeps_the_last_ticks() {
        let mut h = History::default();
        for tick in 0..(HISTORY as u32 + 10) {
            h.insert(Snapshot {
                tick,
                players: Vec::new(),
            });
        }
        assert!(h.get(9).is_none());
        assert!(h.get(10).is_some());
        assert_eq!(
            h.get(HISTORY as u32 + 9).map(|s| s.tick),
            Some(HISTORY as u32 + 9)
        );
    }
}
