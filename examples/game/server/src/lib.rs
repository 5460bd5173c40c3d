//! The example game's authoritative server.
//!
//! A [`GameServer`] owns a legume-rs `Server` and a [`World`]: it turns
//! connections into players, queues their inputs, advances the world at
//! [`TICK_RATE`] (30 Hz) and sends every player a snapshot each tick
//! (unreliable: a lost one is replaced 33 ms later), encoded against the
//! newest snapshot that player acknowledged (legume's delivery feedback),
//! and it sends joins, leaves and chat reliably and in order. See `legume_game_protocol` for
//! the messages and why each has its delivery.
//!
//! [`spawn_bots`] starts scripted clients (from `legume_game_client::bot`)
//! in threads, for `game-server --bots N`, `--demo` and the tests.
//!
//! ```no_run
//! use std::time::Duration;
//! use legume_game_client::bot::verify;
//! use legume_game_server::{spawn_bots, BotSpec, GameServer, ServerOptions};
//!
//! let mut game = GameServer::start(ServerOptions::local(0))?;
//! let bots = spawn_bots(game.local_addr(), &BotSpec::new(4, Duration::from_secs(6)));
//! game.run_until(|_| bots.iter().all(|b| b.is_finished()));
//! let reports: Vec<_> = bots.into_iter().map(|b| b.join().unwrap()).collect();
//! verify(&reports).map_err(|problems| problems.join("\n"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs, unreachable_pub)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use legume::net::{ListenError, LiveStats};
use legume::prelude::*;
use legume_game_client::bot::{run_bot, BotConfig, BotReport};
use legume_game_protocol::cli::NetFlags;
use legume_game_protocol::delta::{self, History, HISTORY};
use legume_game_protocol::rates::human_rate;
use legume_game_protocol::{
    factory, net_config, sanitize, ChatLine, PlayerId, PlayerInfo, PlayerJoined, PlayerLeft,
    ToServer, Welcome, MAX_CHAT_LEN, MAX_PLAYERS, SNAPSHOT_CHANNEL, TICK_RATE,
};

pub mod world;

pub use world::World;

/// How a [`GameServer`] runs.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// The connection config: protocol id and conditioner (see `NetFlags::config`).
    pub net: Config,
    /// Print joins, leaves and chat to stdout.
    pub log: bool,
    /// Print a table of peers to stdout this often (`--stats`: every second).
    pub stats_every: Option<Duration>,
    /// Seed of the spawn points.
    pub seed: u64,
    /// Send each player's snapshots as deltas against the newest one it
    /// acknowledged (default); off, every snapshot is sent whole.
    pub delta_snapshots: bool,
}

impl ServerOptions {
    /// On 127.0.0.1 at `port`, quiet, with the game's protocol id and no conditioner.
    pub fn local(port: u16) -> Self {
        ServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            net: net_config(),
            log: false,
            stats_every: None,
            seed: 1,
            delta_snapshots: true,
        }
    }
}

/// Counters over a server's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// Ticks simulated.
    pub ticks: u64,
    /// Players who joined.
    pub joined: u64,
    /// Players who left.
    pub left: u64,
    /// Chat lines relayed (each counted once, whatever the number of receivers).
    pub chats: u64,
    /// Input messages received.
    pub inputs: u64,
    /// Messages ignored: from a peer that is not a player yet, a second
    /// hello, or a server-to-client message.
    pub ignored: u64,
    /// Reliable sends refused (the peer's queue was full); that peer was disconnected.
    pub send_failures: u64,
    /// Snapshots sent whole, and as deltas.
    pub snapshots: (u64, u64),
    /// Bytes of the snapshot messages sent (encoded, before packet headers).
    pub snapshot_bytes: u64,
}

/// What the server knows of one player's snapshots.
#[derive(Debug, Default)]
struct Baseline {
    /// The newest snapshot tick the client acknowledged.
    acked: Option<u32>,
    /// Snapshots sent and not yet acknowledged or lost: message number on
    /// [`SNAPSHOT_CHANNEL`], tick. At most [`HISTORY`].
    sent: VecDeque<(u64, u32)>,
}

impl Baseline {
    /// Snapshot message `number` was acknowledged (`acked`) or lost.
    fn on_fate(&mut self, number: u64, acked: bool) {
        let Some(at) = self.sent.iter().position(|&(n, _)| n == number) else {
            return;
        };
        let (_, tick) = self.sent[at];
        self.sent.remove(at);
        if acked && self.acked.is_none_or(|t| tick > t) {
            self.acked = Some(tick);
        }
    }
}

/// The game server: a legume-rs `Server`, the [`World`], and the fixed tick.
pub struct GameServer {
    server: Server,
    world: World,
    players: HashMap<SocketAddr, PlayerId>,
    /// Each player's acknowledged snapshot, for deltas.
    baselines: HashMap<SocketAddr, Baseline>,
    /// The last snapshots sent, the bases of deltas.
    history: History,
    options: ServerOptions,
    started: Instant,
    next_tick: Instant,
    next_stats: Option<Instant>,
    counters: ServerCounters,
}

impl std::fmt::Debug for GameServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GameServer")
            .field("server", &self.server)
            .field("players", &self.world.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// The time between ticks.
pub fn tick_period() -> Duration {
    Duration::from_secs(1) / TICK_RATE
}

impl GameServer {
    /// Listens on `options.listen` and starts the tick clock.
    pub fn start(options: ServerOptions) -> Result<Self, ListenError> {
        let factory = factory().expect("the game's message ids are distinct");
        let mut server = Server::new(factory, options.net.clone());
        server.set_max_peers(MAX_PLAYERS);
        server.listen(options.listen)?;
        let now = Instant::now();
        Ok(GameServer {
            server,
            world: World::new(options.seed),
            players: HashMap::new(),
            baselines: HashMap::new(),
            history: History::default(),
            // A little past the second, so that the first rates are in.
            next_stats: options
                .stats_every
                .map(|every| now + every + 3 * tick_period()),
            options,
            started: now,
            next_tick: now + tick_period(),
            counters: ServerCounters::default(),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server
            .local_addr()
            .expect("a started server has a socket")
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Counters over the server's life.
    pub fn counters(&self) -> ServerCounters {
        self.counters
    }

    /// Runs one pass of the loop: waits for traffic until the next tick is
    /// due (at most that long), handles what arrived, and when the tick is
    /// due advances the world and sends the snapshots.
    pub fn step(&mut self) {
        let wait = self.next_tick.saturating_duration_since(Instant::now());
        self.server.update_timeout(wait);
        self.handle_events();
        let now = Instant::now();
        if now >= self.next_tick {
            self.world.tick();
            self.counters.ticks += 1;
            self.send_snapshots();
            self.server.update(); // send them now, not after the next wait
            self.handle_events();
            self.next_tick += tick_period();
            if self.next_tick < now {
                // Far behind (a stalled machine): skip the missed ticks
                // rather than run them back to back.
                self.next_tick = now + tick_period();
            }
        }
        if let Some(at) = self.next_stats {
            if now >= at {
                print!("{}", self.stats_table());
                self.next_stats = self.options.stats_every.map(|every| now + every);
            }
        }
    }

    /// Runs the loop until `done` returns true (checked every pass).
    pub fn run_until(&mut self, mut done: impl FnMut(&GameServer) -> bool) {
        while !done(self) {
            self.step();
        }
    }

    /// Runs the loop for `duration`.
    pub fn run_for(&mut self, duration: Duration) {
        let end = Instant::now() + duration;
        self.run_until(|_| Instant::now() >= end);
    }

    /// Disconnects everyone with `reason` and runs the loop a little longer
    /// (at most `linger`) so that the disconnects reach them.
    pub fn shutdown(&mut self, reason: &str, linger: Duration) {
        self.server.disconnect_all(reason);
        let end = Instant::now() + linger;
        while self.server.peer_count() > 0 && Instant::now() < end {
            self.server.update_timeout(Duration::from_millis(10));
            self.handle_events();
        }
    }

    fn log(&self, text: std::fmt::Arguments<'_>) {
        if self.options.log {
            println!("[{:7.2}s] {text}", self.started.elapsed().as_secs_f64());
        }
    }

    fn handle_events(&mut self) {
        while let Some(ServerEvent { peer, event, .. }) = self.server.poll_event() {
            match event {
                Event::Connected => self.log(format_args!("{peer} connected")),
                Event::Message(msg) => match ToServer::from_any(msg) {
                    Ok(msg) => self.handle_message(peer, msg),
                    Err(other) => {
                        self.counters.ignored += 1;
                        self.log(format_args!(
                            "{peer} sent a {}, which clients do not send",
                            other.message_name()
                        ));
                    }
                },
                Event::Disconnected(reason) => self.player_gone(peer, &reason),
                Event::Acked(h) | Event::Lost(h) if h.channel == SNAPSHOT_CHANNEL => {
                    let acked = matches!(event, Event::Acked(_));
                    if let Some(b) = self.baselines.get_mut(&peer) {
                        b.on_fate(h.number, acked);
                    }
                }
                Event::Error(e) => self.log(format_args!("{peer}: message dropped: {e}")),
                Event::Io(e) => self.log(format_args!("{peer}: socket error: {e}")),
                other => self.log(format_args!("{peer}: {other:?}")),
            }
        }
    }

    fn handle_message(&mut self, peer: SocketAddr, msg: ToServer) {
        let player = self.players.get(&peer).copied();
        match (msg, player) {
            (ToServer::Hello(hello), None) => self.join(peer, &hello.name),
            (ToServer::Input(input), Some(id)) => {
                self.counters.inputs += 1;
                self.world.receive_input(id, input.first_seq, &input.moves);
            }
            (ToServer::ChatSend(chat), Some(id)) => {
                let line = ChatLine {
                    from: id,
                    chat_id: chat.chat_id,
                    text: sanitize(&chat.text, MAX_CHAT_LEN),
                };
                self.counters.chats += 1;
                let name = self.world.player(id).map_or("?", |p| p.name.as_str());
                self.log(format_args!("<{name}> {}", line.text));
                self.send_to_players(&line);
            }
            (msg, _) => {
                self.counters.ignored += 1;
                self.log(format_args!("{peer}: ignored {msg:?}"));
            }
        }
    }

    fn join(&mut self, peer: SocketAddr, wanted: &str) {
        let Some((id, name)) = self.world.add_player(wanted) else {
            self.server.disconnect(peer, "the game is full");
            return;
        };
        self.counters.joined += 1;
        let others: Vec<PlayerInfo> = self
            .world
            .infos()
            .into_iter()
            .filter(|p| p.id != id)
            .collect();
        let welcome = Welcome {
            your_id: id,
            your_name: name.clone(),
            tick_rate: TICK_RATE as u8,
            players: others,
        };
        // The others hear of the newcomer; the newcomer finds them in its welcome.
        self.send_to_players(&PlayerJoined {
            player: PlayerInfo {
                id,
                name: name.clone(),
            },
        });
        self.players.insert(peer, id);
        self.send_reliable(peer, &welcome);
        self.log(format_args!("{name} (player {id}) joined from {peer}"));
    }

    fn player_gone(&mut self, peer: SocketAddr, reason: &DisconnectReason) {
        self.baselines.remove(&peer);
        let Some(id) = self.players.remove(&peer) else {
            return;
        };
        let name = self
            .world
            .remove_player(id)
            .map_or_else(|| "?".to_string(), |p| p.name);
        let reason = match reason {
            DisconnectReason::Remote(r) => sanitize(r, 64),
            DisconnectReason::Local(r) => sanitize(r, 64),
            DisconnectReason::TimedOut => "timed out".into(),
            other => sanitize(&format!("{other:?}"), 64),
        };
        self.counters.left += 1;
        self.log(format_args!("{name} (player {id}) left: {reason}"));
        self.send_to_players(&PlayerLeft { id, reason });
    }

    /// Sends `msg` reliably and in order to `peer`; a peer whose queue is
    /// full (hopelessly behind) is disconnected rather than missing an event.
    fn send_reliable(&mut self, peer: SocketAddr, msg: &dyn AnyMessage) {
        match self.server.send(peer, msg, Delivery::ReliableOrdered) {
            // Gone already: its Disconnected event is on its way.
            Ok(()) | Err(SendError::NotConnected) => {}
            Err(e) => {
                self.counters.send_failures += 1;
                self.log(format_args!("{peer}: {e}; disconnecting"));
                self.server.disconnect(peer, "too far behind");
            }
        }
    }

    fn send_to_players(&mut self, msg: &dyn AnyMessage) {
        let peers: Vec<SocketAddr> = self.players.keys().copied().collect();
        for peer in peers {
            self.send_reliable(peer, msg);
        }
    }

    /// Sends every player this tick's snapshot: as a delta against the
    /// newest one it acknowledged while that is still in the history,
    /// whole otherwise.
    fn send_snapshots(&mut self) {
        let snapshot = self.world.snapshot();
        for &peer in self.players.keys() {
            let baseline = self.baselines.entry(peer).or_default();
            let base = baseline
                .acked
                .filter(|_| self.options.delta_snapshots)
                .and_then(|t| self.history.get(t));
            let (sent, bytes) = match base {
                Some(base) => {
                    let d = delta::diff(base, &snapshot);
                    (
                        self.server.send_on(peer, SNAPSHOT_CHANNEL, &d),
                        d.message_len(),
                    )
                }
                None => (
                    self.server.send_on(peer, SNAPSHOT_CHANNEL, &snapshot),
                    snapshot.message_len(),
                ),
            };
            // Unreliable: a refused one (queue full) is replaced next tick.
            if let Ok(handle) = sent {
                if base.is_some() {
                    self.counters.snapshots.1 += 1;
                } else {
                    self.counters.snapshots.0 += 1;
                }
                self.counters.snapshot_bytes += bytes as u64;
                if baseline.sent.len() == HISTORY {
                    baseline.sent.pop_front();
                }
                baseline.sent.push_back((handle.number, snapshot.tick));
            }
        }
        self.history.insert(snapshot);
    }

    /// A table of the peers with their connection's live statistics (from
    /// legume's `Server::live_stats`): RTT and its variation, loss, bytes
    /// and messages per second each way and resends per second (over the
    /// last second), congestion window, bytes in flight and unacked
    /// reliable messages.
    pub fn stats_table(&self) -> String {
        let mut out = String::new();
        let e = self.server.stats();
        let _ = writeln!(
            out,
            "-- {:.1}s  tick {}  players {}  peers {}  accepted {}  rejected {}  invalid {}",
            self.started.elapsed().as_secs_f64(),
            self.world.current_tick(),
            self.world.len(),
            self.server.peer_count(),
            e.accepted,
            e.rejected,
            e.dropped_invalid
        );
        let _ = writeln!(
            out,
            "{:<21} {:>3} {:<12} {:>7} {:>6} {:>6} {:>10} {:>10} {:>9} {:>8} {:>8} {:>10} {:>10} {:>6} {:>8} {:>7}",
            "peer",
            "id",
            "name",
            "rtt ms",
            "±ms",
            "loss%",
            "in",
            "out",
            "msg/s i/o",
            "resend/s",
            "cwnd kB",
            "bw est",
            "pacing",
            "min ms",
            "flight B",
            "unacked"
        );
        let rows: BTreeMap<SocketAddr, LiveStats> = self.server.live_stats().collect();
        for (addr, s) in rows {
            let id = self.players.get(&addr).copied();
            let name = id
                .and_then(|id| self.world.player(id))
                .map_or("-", |p| p.name.as_str());
            let _ = writeln!(
                out,
                "{:<21} {:>3} {:<12} {:>7.1} {:>6.1} {:>6.1} {:>10} {:>10} {:>9} {:>8.1} {:>8.1} {:>10} {:>10} {:>6.1} {:>8} {:>7}",
                addr.to_string(),
                id.map_or("-".into(), |i| i.to_string()),
                name.chars().take(12).collect::<String>(),
                s.rtt_ms,
                s.rtt_var_ms,
                s.packet_loss * 100.0,
                human_rate(s.in_bytes_per_s),
                human_rate(s.out_bytes_per_s),
                format!("{:.0}/{:.0}", s.in_messages_per_s, s.out_messages_per_s),
                s.resends_per_s,
                s.congestion_window as f64 / 1000.0,
                // Bytes per second; 0 (shown "-") when the controller keeps
                // no estimate or does not pace (NewReno).
                rate_or_dash(s.bandwidth_estimate),
                rate_or_dash(s.pacing_rate),
                s.min_rtt_ms,
                s.bytes_in_flight,
                s.pending_acks
            );
        }
        out
    }
}

/// A rate in bytes per second for the stats table, or `-` for none.
fn rate_or_dash(bytes_per_s: u64) -> String {
    if bytes_per_s == 0 {
        "-".into()
    } else {
        human_rate(bytes_per_s as f64)
    }
}

/// A group of bots to start with [`spawn_bots`].
#[derive(Clone, Debug)]
pub struct BotSpec {
    /// How many.
    pub count: usize,
    /// How long each plays.
    pub duration: Duration,
    /// Chat lines each sends.
    pub chats: u32,
    /// Each bot's own conditioner (the same impairments, its own seed).
    pub net: NetFlags,
    /// Bot `i` (from 1) gets seed `seed + i`.
    pub seed: u64,
}

impl BotSpec {
    /// `count` bots for `duration`, two chat lines each, no conditioner.
    pub fn new(count: usize, duration: Duration) -> Self {
        BotSpec {
            count,
            duration,
            chats: 2,
            net: NetFlags::default(),
            seed: 100,
        }
    }
}

/// Starts `spec.count` bots in threads, named `bot-1`, `bot-2`, ..., each
/// waiting for all of them to be in the game before it chats. Join the
/// handles for their reports.
pub fn spawn_bots(server: SocketAddr, spec: &BotSpec) -> Vec<JoinHandle<BotReport>> {
    (1..=spec.count)
        .map(|i| {
            let mut config = BotConfig::new(server, format!("bot-{i}"), spec.duration);
            config.chats = spec.chats;
            config.expect_players = Some(spec.count);
            config.seed = spec.seed + i as u64;
            config.net = spec.net.config(config.seed);
            std::thread::Builder::new()
                .name(config.name.clone())
                .spawn(move || run_bot(config))
                .expect("spawning a bot thread")
        })
        .collect()
}

/// Joins bot threads; a bot that panicked becomes a report saying so.
pub fn join_bots(bots: Vec<JoinHandle<BotReport>>) -> Vec<BotReport> {
    bots.into_iter()
        .enumerate()
        .map(|(i, b)| {
            b.join().unwrap_or_else(|_| BotReport {
                end: "panicked".into(),
                ..BotReport::new(format!("bot-{}", i + 1))
            })
        })
        .collect()
}
