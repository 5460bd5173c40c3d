//! The headless scripted player (`game-client --bot`), and the checks run
//! over what a group of bots saw.
//!
//! A bot connects, moves at random a few times a second, sends a chat line
//! or two, and records every player id it saw (in snapshots and events)
//! and every chat line it received. [`run_bot`] blocks until the bot's
//! time is up, so a test or the server's `--bots` runs each in a thread:
//!
//! ```no_run
//! use std::time::Duration;
//! use legume_game_client::bot::{run_bot, verify, BotConfig};
//!
//! let server = "127.0.0.1:40200".parse()?;
//! let bots: Vec<_> = (1..=4)
//!     .map(|i| {
//!         let mut config = BotConfig::new(server, format!("bot-{i}"), Duration::from_secs(8));
//!         config.expect_players = Some(4);
//!         config.seed = i;
//!         std::thread::spawn(move || run_bot(config))
//!     })
//!     .collect();
//! let reports: Vec<_> = bots.into_iter().map(|b| b.join().unwrap()).collect();
//! verify(&reports).map_err(|problems| problems.join("\n"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use legume::net::sim::Rng;
use legume::net::Stats;
use legume::prelude::*;
use legume_game_protocol::{Dir, PlayerId, Pos};

use crate::session::{GameEvent, GameSession};

/// What a bot does and for how long.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// The server's address.
    pub server: SocketAddr,
    /// The name the bot asks for.
    pub name: String,
    /// How long the bot plays, from the call to [`run_bot`]; then it leaves.
    pub duration: Duration,
    /// Chat lines to send (0 for none).
    pub chats: u32,
    /// No chat line is sent in the last this-long of the bot's time, so that
    /// every line has time to reach every player before anyone leaves.
    pub quiet_before_end: Duration,
    /// Chat only once a snapshot shows at least this many players (so that
    /// every bot of a group is there to receive every line); `None`: chat
    /// once welcomed.
    pub expect_players: Option<usize>,
    /// Seed of the bot's random moves and timings.
    pub seed: u64,
    /// The connection's config (protocol id and conditioner; see `NetFlags::config`).
    pub net: Config,
}

impl BotConfig {
    /// Two chat lines, quiet for the last 40% of `duration` (at most 4 s),
    /// chatting once welcomed, seed 1, the game's protocol id and no
    /// conditioner.
    pub fn new(server: SocketAddr, name: impl Into<String>, duration: Duration) -> Self {
        BotConfig {
            server,
            name: name.into(),
            duration,
            chats: 2,
            quiet_before_end: duration.mul_f64(0.4).min(Duration::from_secs(4)),
            expect_players: None,
            seed: 1,
            net: legume_game_protocol::net_config(),
        }
    }
}

/// A chat line a bot sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentChat {
    /// The bot's chat id for it.
    pub chat_id: u32,
    /// The text.
    pub text: String,
}

/// A chat line a bot received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedChat {
    /// The sender's player id.
    pub from: PlayerId,
    /// The sender's chat id for it.
    pub chat_id: u32,
    /// The text.
    pub text: String,
}

/// What a bot saw, returned by [`run_bot`].
#[derive(Clone, Debug)]
pub struct BotReport {
    /// The bot's name as configured.
    pub name: String,
    /// Its player id, if it was welcomed.
    pub id: Option<PlayerId>,
    /// Every player id seen in a welcome, a join or a snapshot, its own included.
    pub seen: BTreeSet<PlayerId>,
    /// The most players one snapshot held.
    pub max_players_at_once: usize,
    /// The chat lines it sent.
    pub sent: Vec<SentChat>,
    /// The chat lines it received, in order of arrival.
    pub received: Vec<ReceivedChat>,
    /// Moves made, and input messages sent.
    pub moves: (u32, u64),
    /// Where it ended, as it predicted it.
    pub final_pos: Option<Pos>,
    /// Snapshots applied, and snapshots dropped as stale.
    pub snapshots: (u64, u64),
    /// The connection's metrics at the end.
    pub stats: Stats,
    /// How the bot ended: `"finished"`, or why it stopped early.
    pub end: String,
    /// Warnings from the session (undecodable messages, socket errors).
    pub warnings: Vec<String>,
    /// How long it ran.
    pub elapsed: Duration,
}

impl BotReport {
    /// The report of a bot named `name` before it has seen anything: no id,
    /// no players, no chat, zero counters, and `end` saying `"finished"`.
    pub fn new(name: impl Into<String>) -> Self {
        BotReport {
            name: name.into(),
            id: None,
            seen: BTreeSet::new(),
            max_players_at_once: 0,
            sent: Vec::new(),
            received: Vec::new(),
            moves: (0, 0),
            final_pos: None,
            snapshots: (0, 0),
            stats: Stats::default(),
            end: "finished".into(),
            warnings: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }
}

/// Runs one bot until its time is up (or the connection ends), then
/// disconnects and reports what it saw.
pub fn run_bot(config: BotConfig) -> BotReport {
    let start = Instant::now();
    let deadline = start + config.duration;
    let chat_until = deadline
        .checked_sub(config.quiet_before_end)
        .unwrap_or(start);
    let mut rng = Rng::new(config.seed.wrapping_mul(0x9E37_79B9).wrapping_add(17));
    let mut report = BotReport::new(config.name.clone());
    let mut session = match GameSession::connect(config.server, &config.name, config.net.clone()) {
        Ok(s) => s,
        Err(e) => {
            report.end = format!("cannot connect: {e}");
            return report;
        }
    };
    let mut next_move = start;
    let mut next_chat: Option<Instant> = None;
    let mut ended = false;
    while Instant::now() < deadline && !ended {
        session.update(Duration::from_millis(10));
        while let Some(event) = session.poll_event() {
            match event {
                GameEvent::Welcome { id, others } => {
                    report.id = Some(id);
                    report.seen.insert(id);
                    report.seen.extend(others.iter().map(|(id, _)| *id));
                }
                GameEvent::Joined { id, .. } => {
                    report.seen.insert(id);
                }
                GameEvent::Snapshot { players, .. } => {
                    report.seen.extend(players.iter().copied());
                    report.max_players_at_once = report.max_players_at_once.max(players.len());
                    let ready = report.id.is_some()
                        && config.expect_players.is_none_or(|n| players.len() >= n);
                    if ready && next_chat.is_none() {
                        next_chat = Some(Instant::now() + jitter(&mut rng, 100, 600));
                    }
                }
                GameEvent::Chat {
                    from,
                    chat_id,
                    text,
                } => report.received.push(ReceivedChat {
                    from,
                    chat_id,
                    text,
                }),
                GameEvent::Rejected(reason) => {
                    report.end = format!("rejected: {reason}");
                    ended = true;
                }
                GameEvent::Disconnected(reason) => {
                    report.end = format!("disconnected: {reason}");
                    ended = true;
                }
                GameEvent::Warning(w) => report.warnings.push(w),
                GameEvent::Connected | GameEvent::Left { .. } => {}
            }
        }
        let now = Instant::now();
        if report.id.is_some() && now >= next_move {
            let dir = Dir::ALL[rng.gen_range(0..4) as usize];
            session.move_player(dir);
            next_move = now + jitter(&mut rng, 80, 300);
        }
        if let Some(at) = next_chat {
            if now >= at && now < chat_until && (report.sent.len() as u32) < config.chats {
                let n = report.sent.len() + 1;
                let text = format!("hello #{n} from {}", session.name());
                match session.say(&text) {
                    Ok(Some(chat_id)) => report.sent.push(SentChat { chat_id, text }),
                    Ok(None) => {}
                    Err(e) => report.warnings.push(format!("chat not sent: {e}")),
                }
                next_chat = Some(now + jitter(&mut rng, 300, 1000));
            }
        }
    }
    if let Some(why) = session.connect_failure() {
        report.end = format!("cannot connect: {why}");
    } else if session.state() == State::Connecting {
        report.end = format!(
            "cannot connect: still connecting after {:.1} s",
            config.duration.as_secs_f64()
        );
        ended = true;
    }
    report.moves = (session.moves_made(), session.inputs_sent());
    report.final_pos = session.my_position();
    report.snapshots = session.snapshot_counts();
    if session.missing_bases() > 0 {
        report.warnings.push(format!(
            "{} snapshot deltas against a base this client never had",
            session.missing_bases()
        ));
    }
    report.stats = session.stats();
    if !ended {
        session.disconnect("bot finished");
    }
    report.elapsed = start.elapsed();
    report
}

fn jitter(rng: &mut Rng, min_ms: u64, max_ms: u64) -> Duration {
    Duration::from_millis(rng.gen_range(min_ms..max_ms))
}

/// Checks a group of bots that played together, alone on their server:
/// each was welcomed and ended on its own, sent at least one chat line, saw
/// every other, and received every line sent by any of them exactly once
/// and intact. Returns every problem found.
pub fn verify(reports: &[BotReport]) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut ids = BTreeMap::new();
    for r in reports {
        match r.id {
            Some(id) => {
                if let Some(other) = ids.insert(id, r.name.as_str()) {
                    problems.push(format!("{} and {other} both got id {id}", r.name));
                }
            }
            None => problems.push(format!("{} was never welcomed ({})", r.name, r.end)),
        }
        if r.end != "finished" {
            problems.push(format!("{} ended early: {}", r.name, r.end));
        }
        if r.sent.is_empty() {
            problems.push(format!("{} sent no chat line", r.name));
        }
    }
    // Every line sent, keyed by (sender id, chat id).
    let mut expected: BTreeMap<(PlayerId, u32), &str> = BTreeMap::new();
    for r in reports {
        let Some(id) = r.id else { continue };
        for s in &r.sent {
            if expected.insert((id, s.chat_id), &s.text).is_some() {
                problems.push(format!("{} used chat id {} twice", r.name, s.chat_id));
            }
        }
    }
    for r in reports {
        let missing: Vec<_> = ids
            .keys()
            .filter(|id| !r.seen.contains(id))
            .map(|id| format!("{} ({id})", ids[id]))
            .collect();
        if !missing.is_empty() {
            problems.push(format!("{} never saw {}", r.name, missing.join(", ")));
        }
        let mut counts: BTreeMap<(PlayerId, u32), usize> = BTreeMap::new();
        for c in &r.received {
            let key = (c.from, c.chat_id);
            *counts.entry(key).or_default() += 1;
            match expected.get(&key) {
                Some(text) if *text == c.text => {}
                Some(text) => problems.push(format!(
                    "{} got line {key:?} as {:?}, sent as {text:?}",
                    r.name, c.text
                )),
                None => problems.push(format!("{} got a line nobody sent: {c:?}", r.name)),
            }
        }
        for key in expected.keys() {
            match counts.get(key).copied().unwrap_or(0) {
                1 => {}
                n => problems.push(format!("{} got line {key:?} {n} times", r.name)),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

impl fmt::Display for BotReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.id.map_or("-".to_string(), |id| id.to_string());
        let seen: Vec<String> = self.seen.iter().map(u16::to_string).collect();
        let pos = self
            .final_pos
            .map_or("-".to_string(), |p| format!("({},{})", p.x, p.y));
        writeln!(
            f,
            "{} (player {id}): {} after {:.1} s; saw players [{}], at most {} at once",
            self.name,
            self.end,
            self.elapsed.as_secs_f64(),
            seen.join(" "),
            self.max_players_at_once
        )?;
        writeln!(
            f,
            "  moved {} times in {} input messages, ended at {pos}; {} snapshots ({} stale)",
            self.moves.0, self.moves.1, self.snapshots.0, self.snapshots.1
        )?;
        writeln!(
            f,
            "  chat: sent {}, received {} lines from {} players",
            self.sent.len(),
            self.received.len(),
            self.received
                .iter()
                .map(|c| c.from)
                .collect::<BTreeSet<_>>()
                .len()
        )?;
        write!(
            f,
            "  net: rtt {:.1} ms, loss {:.1}%, {} B in, {} B out, {} resends",
            self.stats.latency_ms,
            self.stats.packet_loss * 100.0,
            self.stats.in_bytes,
            self.stats.out_bytes,
            self.stats.resends
        )?;
        for w in &self.warnings {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, id: PlayerId, seen: &[PlayerId]) -> BotReport {
        BotReport {
            id: Some(id),
            seen: seen.iter().copied().collect(),
            max_players_at_once: seen.len(),
            sent: vec![SentChat {
                chat_id: 1,
                text: format!("hi from {name}"),
            }],
            ..BotReport::new(name)
        }
    }

    fn line(from: PlayerId, name: &str) -> ReceivedChat {
        ReceivedChat {
            from,
            chat_id: 1,
            text: format!("hi from {name}"),
        }
    }

    fn pair() -> Vec<BotReport> {
        let mut a = report("a", 1, &[1, 2]);
        let mut b = report("b", 2, &[1, 2]);
        a.received = vec![line(1, "a"), line(2, "b")];
        b.received = vec![line(2, "b"), line(1, "a")];
        vec![a, b]
    }

    #[test]
    fn a_complete_group_passes() {
        assert_eq!(verify(&pair()), Ok(()));
    }

    #[test]
    fn missing_duplicate_and_altered_lines_are_problems() {
        let mut r = pair();
        r[0].received.pop();
        assert_eq!(verify(&r), Err(vec!["a got line (2, 1) 0 times".into()]));

        let mut r = pair();
        r[1].received.push(line(1, "a"));
        assert_eq!(verify(&r), Err(vec!["b got line (1, 1) 2 times".into()]));

        let mut r = pair();
        r[1].received[1].text = "forged".into();
        assert_eq!(
            verify(&r),
            Err(vec![
                "b got line (1, 1) as \"forged\", sent as \"hi from a\"".into()
            ])
        );
    }

    #[test]
    fn unseen_players_silent_and_unwelcomed_bots_are_problems() {
        let mut r = pair();
        r[0].seen.remove(&2);
        assert_eq!(verify(&r), Err(vec!["a never saw b (2)".into()]));

        let mut r = pair();
        r[1].sent.clear();
        r[0].received.pop();
        r[1].received.remove(0);
        assert_eq!(verify(&r), Err(vec!["b sent no chat line".into()]));

        let mut r = pair();
        r[1].id = None;
        r[1].end = "rejected: full".into();
        let problems = verify(&r).unwrap_err();
        assert!(problems.contains(&"b was never welcomed (rejected: full)".into()));
        assert!(problems.contains(&"b ended early: rejected: full".into()));
    }
}
