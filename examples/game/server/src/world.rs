//! The authoritative simulation: players on the grid, their queued moves,
//! and one [`World::tick`] per server tick. No networking here.

use std::collections::{BTreeMap, VecDeque};

use legume::net::sim::Rng;
use legume_game_protocol::world::{floor_cells, step};
use legume_game_protocol::{
    sanitize, Dir, PlayerId, PlayerInfo, PlayerState, Pos, Snapshot, MAX_NAME_LEN,
    MAX_PENDING_MOVES, MAX_PLAYERS, MOVES_PER_TICK,
};

/// One player as the server simulates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Player {
    /// The name, unique in the world.
    pub name: String,
    /// Where the player stands.
    pub pos: Pos,
    /// The number of the last move received (and queued).
    pub last_received: u32,
    /// The number of the last move applied.
    pub last_applied: u32,
    /// Moves received and not yet applied, oldest first.
    pub queue: VecDeque<Dir>,
}

/// Every player and the tick counter.
#[derive(Debug)]
pub struct World {
    players: BTreeMap<PlayerId, Player>,
    next_id: PlayerId,
    tick: u32,
    rng: Rng,
}

impl World {
    /// An empty world; `seed` picks the spawn points.
    pub fn new(seed: u64) -> Self {
        World {
            players: BTreeMap::new(),
            next_id: 1,
            tick: 0,
            rng: Rng::new(seed),
        }
    }

    /// Adds a player on a free floor cell and returns its id and name, or
    /// `None` when [`MAX_PLAYERS`] play already. The name is sanitized,
    /// `player-ID` when that leaves nothing, and suffixed with `-ID` when
    /// another player has it.
    pub fn add_player(&mut self, wanted: &str) -> Option<(PlayerId, String)> {
        if self.players.len() >= MAX_PLAYERS {
            return None;
        }
        let id = self.allocate_id()?;
        let mut name = sanitize(wanted.trim(), MAX_NAME_LEN);
        if name.is_empty() {
            name = format!("player-{id}");
        }
        if self.players.values().any(|p| p.name == name) {
            let suffix = format!("-{id}");
            name = sanitize(&name, MAX_NAME_LEN - suffix.len()) + &suffix;
        }
        let pos = self.spawn_point();
        self.players.insert(
            id,
            Player {
                name: name.clone(),
                pos,
                last_received: 0,
                last_applied: 0,
                queue: VecDeque::new(),
            },
        );
        Some((id, name))
    }

    /// Ids are not reused while the server runs (so that a late event about a
    /// player who left never names a newcomer), until they wrap.
    fn allocate_id(&mut self) -> Option<PlayerId> {
        for _ in 0..=u16::MAX {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if id != 0 && !self.players.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    fn spawn_point(&mut self) -> Pos {
        let free: Vec<Pos> = floor_cells()
            .filter(|c| self.players.values().all(|p| p.pos != *c))
            .collect();
        let cells = if free.is_empty() {
            floor_cells().collect()
        } else {
            free
        };
        cells[self.rng.gen_range(0..cells.len() as u64) as usize]
    }

    /// Removes a player; returns it if it was there.
    pub fn remove_player(&mut self, id: PlayerId) -> Option<Player> {
        self.players.remove(&id)
    }

    /// Queues the moves of an `Input` that are new: those numbered past the
    /// last received, in sequence. Older ones (resent because their ack had
    /// not arrived yet) are skipped; a gap ends the message, which a correct
    /// client never sends; at most [`MAX_PENDING_MOVES`] wait. Returns how
    /// many were queued.
    pub fn receive_input(&mut self, id: PlayerId, first_seq: u32, moves: &[Dir]) -> usize {
        let Some(p) = self.players.get_mut(&id) else {
            return 0;
        };
        let mut queued = 0;
        for (i, &dir) in moves.iter().enumerate() {
            let Some(seq) = u32::try_from(i).ok().and_then(|i| first_seq.checked_add(i)) else {
                break;
            };
            if seq <= p.last_received {
                continue;
            }
            if seq != p.last_received + 1 || p.queue.len() >= MAX_PENDING_MOVES {
                break;
            }
            p.queue.push_back(dir);
            p.last_received = seq;
            queued += 1;
        }
        queued
    }

    /// Advances the world by one tick: each player makes up to
    /// [`MOVES_PER_TICK`] of its queued moves.
    pub fn tick(&mut self) {
        self.tick = self.tick.wrapping_add(1);
        for p in self.players.values_mut() {
            for _ in 0..MOVES_PER_TICK {
                let Some(dir) = p.queue.pop_front() else {
                    break;
                };
                p.pos = step(p.pos, dir);
                p.last_applied += 1;
            }
        }
    }

    /// The snapshot of this tick.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            tick: self.tick,
            players: self
                .players
                .iter()
                .map(|(&id, p)| PlayerState {
                    id,
                    pos: p.pos,
                    last_move: p.last_applied,
                })
                .collect(),
        }
    }

    /// Every player's id and name, for a welcome.
    pub fn infos(&self) -> Vec<PlayerInfo> {
        self.players
            .iter()
            .map(|(&id, p)| PlayerInfo {
                id,
                name: p.name.clone(),
            })
            .collect()
    }

    /// A player, if it is in the world.
    pub fn player(&self, id: PlayerId) -> Option<&Player> {
        self.players.get(&id)
    }

    /// The number of players.
    pub fn len(&self) -> usize {
        self.players.len()
    }

    /// Whether nobody plays.
    pub fn is_empty(&self) -> bool {
        self.players.is_empty()
    }

    /// The current tick.
    pub fn current_tick(&self) -> u32 {
        self.tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use legume_game_protocol::world::is_wall;

    #[test]
    fn players_spawn_on_distinct_floor_cells_with_unique_names() {
        let mut w = World::new(3);
        let (a, an) = w.add_player("ann").unwrap();
        let (b, bn) = w.add_player("ann").unwrap();
        let (c, cn) = w.add_player("\x1b[31m").unwrap();
        assert_eq!((a, b, c), (1, 2, 3));
        assert_eq!(an, "ann");
        assert_eq!(bn, "ann-2");
        assert_eq!(cn, "[31m");
        let (_, dn) = w.add_player("\n").unwrap();
        assert_eq!(dn, "player-4");
        let pa = w.player(a).unwrap().pos;
        let pb = w.player(b).unwrap().pos;
        assert_ne!(pa, pb);
        assert!(!is_wall(pa) && !is_wall(pb));
        // Ids are not reused.
        w.remove_player(b);
        assert_eq!(w.add_player("bob").unwrap().0, 5);
    }

    #[test]
    fn the_world_is_full_at_max_players() {
        let mut w = World::new(1);
        for i in 0..MAX_PLAYERS {
            assert!(w.add_player(&format!("p{i}")).is_some());
        }
        assert_eq!(w.add_player("late"), None);
        assert_eq!(w.snapshot().players.len(), MAX_PLAYERS);
    }

    #[test]
    fn moves_apply_once_in_order_at_the_tick_rate_limit() {
        let mut w = World::new(7);
        let (id, _) = w.add_player("ann").unwrap();
        let start = w.player(id).unwrap().pos;
        let moves = [
            Dir::Left,
            Dir::Right,
            Dir::Left,
            Dir::Right,
            Dir::Up,
            Dir::Down,
        ];
        assert_eq!(w.receive_input(id, 1, &moves[..3]), 3);
        // A resend overlapping what arrived queues only the new moves.
        assert_eq!(w.receive_input(id, 1, &moves), 3);
        assert_eq!(w.receive_input(id, 1, &moves), 0);
        // A gap (moves 10.. before 7..9) is refused.
        assert_eq!(w.receive_input(id, 10, &moves), 0);
        w.tick();
        let p = w.player(id).unwrap();
        assert_eq!(
            (p.last_received, p.last_applied),
            (6, MOVES_PER_TICK as u32)
        );
        w.tick();
        let p = w.player(id).unwrap();
        assert_eq!(p.last_applied, 6);
        let expected = moves.iter().fold(start, |pos, &d| step(pos, d));
        assert_eq!(p.pos, expected);
        let snap = w.snapshot();
        assert_eq!(snap.tick, 2);
        assert_eq!(snap.players[0].last_move, 6);
        // Moves for nobody are ignored.
        assert_eq!(w.receive_input(99, 1, &moves), 0);
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut w = World::new(7);
        let (id, _) = w.add_player("ann").unwrap();
        let many = vec![Dir::Up; MAX_PENDING_MOVES];
        assert_eq!(w.receive_input(id, 1, &many), MAX_PENDING_MOVES);
        assert_eq!(w.receive_input(id, 33, &[Dir::Up]), 0);
        w.tick();
        assert_eq!(w.receive_input(id, 33, &[Dir::Up]), 1);
    }
}
