//! The grid both sides simulate: its size, its walls and the movement rule.
//!
//! The server is the authority; the client runs the same [`step`] on its
//! unapplied moves to show them before the server confirms them.

use legume::prelude::*;

/// The grid's width in cells, walls included.
pub const WIDTH: u16 = 40;

/// The grid's height in cells, walls included.
pub const HEIGHT: u16 = 16;

/// The map, one string per row: `#` is a wall, anything else floor.
const MAP: [&str; HEIGHT as usize] = [
    "########################################",
    "#......................................#",
    "#..####..........#..........####.......#",
    "#..#.............#.............#.......#",
    "#..#.............#.............#.......#",
    "#................#.....................#",
    "#.......######.......######............#",
    "#......................................#",
    "#......................................#",
    "#.......######.......######............#",
    "#................#.....................#",
    "#..#.............#.............#.......#",
    "#..#.............#.............#.......#",
    "#..####..........#..........####.......#",
    "#......................................#",
    "########################################",
];

/// A cell of the grid; (0, 0) is the top left corner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Codec)]
pub struct Pos {
    /// Column, from 0 (left).
    pub x: u16,
    /// Row, from 0 (top).
    pub y: u16,
}

/// A move of one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Codec)]
pub enum Dir {
    /// One row up.
    Up,
    /// One row down.
    Down,
    /// One column left.
    Left,
    /// One column right.
    Right,
}

impl Dir {
    /// All four, for picking one at random.
    pub const ALL: [Dir; 4] = [Dir::Up, Dir::Down, Dir::Left, Dir::Right];
}

/// Whether the cell is a wall; every cell outside the grid is.
pub fn is_wall(pos: Pos) -> bool {
    MAP.get(usize::from(pos.y))
        .and_then(|row| row.as_bytes().get(usize::from(pos.x)))
        .is_none_or(|&c| c == b'#')
}

/// Where a move from `pos` ends: one cell over, or `pos` itself when that
/// cell is a wall. Both sides use it, so a client's prediction matches the
/// server unless another player's move interferes (players do not block
/// each other, so here nothing does).
pub fn step(pos: Pos, dir: Dir) -> Pos {
    let next = match dir {
        Dir::Up => Pos {
            x: pos.x,
            y: pos.y.wrapping_sub(1),
        },
        Dir::Down => Pos {
            x: pos.x,
            y: pos.y.saturating_add(1),
        },
        Dir::Left => Pos {
            x: pos.x.wrapping_sub(1),
            y: pos.y,
        },
        Dir::Right => Pos {
            x: pos.x.saturating_add(1),
            y: pos.y,
        },
    };
    if is_wall(next) {
        pos
    } else {
        next
    }
}

/// Every floor cell, row by row: where players may stand.
pub fn floor_cells() -> impl Iterator<Item = Pos> {
    (0..HEIGHT)
        .flat_map(|y| (0..WIDTH).map(move |x| Pos { x, y }))
        .filter(|&p| !is_wall(p))
}

/// The character a player is drawn as: `1`..`9`, then `A`..`Z`, then
/// `a`..`z`, then `*` for ids past those.
pub fn glyph(id: crate::PlayerId) -> char {
    const GLYPHS: &[u8] = b"123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    usize::from(id)
        .checked_sub(1)
        .and_then(|i| GLYPHS.get(i))
        .map_or('*', |&b| char::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_a_closed_rectangle() {
        for (y, row) in MAP.iter().enumerate() {
            assert_eq!(row.len(), usize::from(WIDTH), "row {y}");
            assert!(row.starts_with('#') && row.ends_with('#'), "row {y}");
        }
        assert!(MAP[0].bytes().all(|c| c == b'#'));
        assert!(MAP[usize::from(HEIGHT) - 1].bytes().all(|c| c == b'#'));
        assert!(floor_cells().count() > 300);
    }

    #[test]
    fn step_moves_one_cell_and_stops_at_walls() {
        let p = Pos { x: 1, y: 1 };
        assert_eq!(step(p, Dir::Right), Pos { x: 2, y: 1 });
        assert_eq!(step(p, Dir::Down), Pos { x: 1, y: 2 });
        assert_eq!(step(p, Dir::Up), p);
        assert_eq!(step(p, Dir::Left), p);
        // Outside the grid is wall, even at the type's edges.
        assert!(is_wall(Pos { x: u16::MAX, y: 1 }));
        assert_eq!(step(Pos { x: 0, y: 0 }, Dir::Left), Pos { x: 0, y: 0 });
    }

    #[test]
    fn glyphs_are_distinct_for_the_first_ids() {
        let glyphs: std::collections::HashSet<char> = (1..=61).map(glyph).collect();
        assert_eq!(glyphs.len(), 61);
        assert_eq!(glyph(1), '1');
        assert_eq!(glyph(10), 'A');
        assert_eq!(glyph(0), '*');
        assert_eq!(glyph(500), '*');
    }
}
