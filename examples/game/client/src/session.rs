//! One player's connection to the game: the world as this client knows it,
//! its unapplied moves, and the chat. Shared by the terminal UI and the bot.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use legume::net::{ConnectError, LiveStats, Stats};
use legume::prelude::*;
use legume_game_protocol::delta::{self, History};
use legume_game_protocol::world::step;
use legume_game_protocol::{
    factory, sanitize, ChatSend, Dir, Hello, Input, PlayerId, Pos, Snapshot, ToClient,
    MAX_CHAT_LEN, MAX_NAME_LEN, MAX_PENDING_MOVES, TICK_RATE,
};

/// What happened in the game, in the order it arrived, drained with
/// [`GameSession::poll_event`].
#[derive(Clone, Debug, PartialEq)]
pub enum GameEvent {
    /// The handshake completed; [`Hello`] was sent.
    Connected,
    /// The server refused the connection.
    Rejected(String),
    /// The server gave this client its id.
    Welcome {
        /// This client's player id.
        id: PlayerId,
        /// The players already there.
        others: Vec<(PlayerId, String)>,
    },
    /// A player joined.
    Joined {
        /// Who.
        id: PlayerId,
        /// Their name.
        name: String,
    },
    /// A player left.
    Left {
        /// Who.
        id: PlayerId,
        /// Why.
        reason: String,
    },
    /// A chat line (this client's own lines come back too).
    Chat {
        /// The sender.
        from: PlayerId,
        /// The sender's number for the line.
        chat_id: u32,
        /// The text.
        text: String,
    },
    /// A snapshot newer than any before was applied.
    Snapshot {
        /// Its server tick.
        tick: u32,
        /// The players in it.
        players: Vec<PlayerId>,
    },
    /// The connection ended.
    Disconnected(DisconnectReason),
    /// The connection reported a problem it survived (an undecodable message,
    /// a socket error, a message of the wrong direction).
    Warning(String),
}

/// One line of the chat and event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The sender's id, for chat lines; `None` for notices.
    pub from: Option<PlayerId>,
    /// The text, sanitized.
    pub text: String,
}

/// A player as this client knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerView {
    /// The id.
    pub id: PlayerId,
    /// The name, or `?` when its join event has not arrived yet.
    pub name: String,
    /// Where the player is: the server's word for others, the prediction for oneself.
    pub pos: Pos,
    /// Whether this is this client's player.
    pub me: bool,
}

/// How many log lines a session keeps.
const LOG_LINES: usize = 200;

/// A client of the game server.
#[derive(Debug)]
pub struct GameSession {
    client: Client,
    name: String,
    my_id: Option<PlayerId>,
    names: BTreeMap<PlayerId, String>,
    positions: BTreeMap<PlayerId, Pos>,
    last_tick: Option<u32>,
    snapshots: u64,
    stale_snapshots: u64,
    /// Snapshots received (whole or rebuilt from a delta), stale ones too:
    /// the bases of the server's deltas.
    history: History,
    /// Deltas whose base was not in the history (never, with a correct server).
    missing_bases: u64,
    pending: VecDeque<(u32, Dir)>,
    next_seq: u32,
    last_input_sent: Option<Instant>,
    inputs_sent: u64,
    next_chat_id: u32,
    log: VecDeque<LogLine>,
    events: VecDeque<GameEvent>,
    ended: Option<String>,
    /// Why the handshake failed, if it did (the session never connected).
    connect_failure: Option<String>,
    was_connected: bool,
}

impl GameSession {
    /// Starts connecting to the server at `server` as `name`, with `config`
    /// (see `NetFlags::config`).
    pub fn connect(server: SocketAddr, name: &str, config: Config) -> Result<Self, ConnectError> {
        let factory = factory().expect("the game's message ids are distinct");
        let mut client = Client::new(factory, config);
        client.connect(server)?;
        Ok(GameSession {
            client,
            name: sanitize(name, MAX_NAME_LEN),
            my_id: None,
            names: BTreeMap::new(),
            positions: BTreeMap::new(),
            last_tick: None,
            snapshots: 0,
            stale_snapshots: 0,
            history: History::default(),
            missing_bases: 0,
            pending: VecDeque::new(),
            next_seq: 1,
            last_input_sent: None,
            inputs_sent: 0,
            next_chat_id: 1,
            log: VecDeque::new(),
            events: VecDeque::new(),
            ended: None,
            connect_failure: None,
            was_connected: false,
        })
    }

    /// Runs the connection: reads what arrived (waiting up to `max_wait`
    /// for it), applies it, and sends the unapplied moves when a tick has
    /// passed since they last went out. Call it every frame.
    pub fn update(&mut self, max_wait: Duration) {
        if max_wait.is_zero() {
            self.client.update();
        } else {
            self.client.update_timeout(max_wait);
        }
        while let Some(event) = self.client.poll_event() {
            self.handle(event);
        }
        self.send_inputs(Instant::now());
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Connected => {
                let hello = Hello {
                    name: self.name.clone(),
                };
                if let Err(e) = self.client.send(&hello, Delivery::ReliableOrdered) {
                    self.warn(format!("hello not sent: {e}"));
                }
                self.was_connected = true;
                self.notice("connected; waiting for the welcome".into());
                self.events.push_back(GameEvent::Connected);
            }
            Event::Rejected { reason } => {
                let reason = sanitize(&reason, 200);
                self.notice(format!("rejected: {reason}"));
                self.ended = Some(format!("rejected: {reason}"));
                self.connect_failure = Some(format!("rejected by the server: {reason}"));
                self.events.push_back(GameEvent::Rejected(reason));
            }
            Event::Disconnected(reason) => {
                self.notice(format!("disconnected: {reason}"));
                self.ended = Some(format!("disconnected: {reason}"));
                if !self.was_connected {
                    self.connect_failure = Some(match reason {
                        DisconnectReason::ConnectTimedOut => {
                            "no answer from the server within the connect timeout".into()
                        }
                        _ => format!("disconnected while connecting: {reason}"),
                    });
                }
                self.events.push_back(GameEvent::Disconnected(reason));
            }
            Event::Message(msg) => match ToClient::from_any(msg) {
                Ok(msg) => self.apply(msg),
                Err(other) => self.warn(format!(
                    "unexpected {} from the server",
                    other.message_name()
                )),
            },
            Event::Error(e) => self.warn(format!("message dropped: {e}")),
            Event::Io(e) => self.warn(format!("socket: {e}")),
            other => self.warn(format!("{other:?}")),
        }
    }

    fn apply(&mut self, msg: ToClient) {
        match msg {
            ToClient::Welcome(w) => {
                self.my_id = Some(w.your_id);
                self.name = sanitize(&w.your_name, MAX_NAME_LEN);
                self.names.insert(w.your_id, self.name.clone());
                let mut others = Vec::with_capacity(w.players.len());
                for p in w.players {
                    let name = sanitize(&p.name, MAX_NAME_LEN);
                    self.names.insert(p.id, name.clone());
                    others.push((p.id, name));
                }
                self.notice(format!(
                    "welcome, {} (player {}); {} other player(s) here",
                    self.name,
                    w.your_id,
                    others.len()
                ));
                self.events.push_back(GameEvent::Welcome {
                    id: w.your_id,
                    others,
                });
            }
            ToClient::PlayerJoined(j) => {
                let name = sanitize(&j.player.name, MAX_NAME_LEN);
                self.names.insert(j.player.id, name.clone());
                self.notice(format!("{name} joined"));
                self.events.push_back(GameEvent::Joined {
                    id: j.player.id,
                    name,
                });
            }
            ToClient::PlayerLeft(l) => {
                let reason = sanitize(&l.reason, 64);
                let name = self.names.remove(&l.id).unwrap_or_else(|| "?".into());
                self.positions.remove(&l.id);
                self.notice(format!("{name} left ({reason})"));
                self.events.push_back(GameEvent::Left { id: l.id, reason });
            }
            ToClient::ChatLine(c) => {
                let text = sanitize(&c.text, MAX_CHAT_LEN);
                self.push_log(LogLine {
                    from: Some(c.from),
                    text: text.clone(),
                });
                self.events.push_back(GameEvent::Chat {
                    from: c.from,
                    chat_id: c.chat_id,
                    text,
                });
            }
            ToClient::Snapshot(s) => {
                self.history.insert(s.clone());
                self.apply_snapshot(s);
            }
            ToClient::SnapshotDelta(d) => {
                // The base is one we acknowledged, so we have it.
                let Some(base) = self.history.get(d.base_tick) else {
                    self.missing_bases += 1;
                    return;
                };
                let s = delta::apply(base, &d);
                self.history.insert(s.clone());
                self.apply_snapshot(s);
            }
        }
    }

    /// Shows a snapshot, unless it is older than one shown.
    fn apply_snapshot(&mut self, s: Snapshot) {
        // Unreliable: late or duplicated ones are older than what we have.
        if self.last_tick.is_some_and(|t| s.tick <= t) {
            self.stale_snapshots += 1;
            return;
        }
        self.last_tick = Some(s.tick);
        self.snapshots += 1;
        self.positions.clear();
        for p in &s.players {
            self.positions.insert(p.id, p.pos);
            if Some(p.id) == self.my_id {
                // Moves the server applied are no longer ours to replay.
                while self
                    .pending
                    .front()
                    .is_some_and(|&(seq, _)| seq <= p.last_move)
                {
                    self.pending.pop_front();
                }
            }
        }
        let players = s.players.iter().map(|p| p.id).collect();
        self.events.push_back(GameEvent::Snapshot {
            tick: s.tick,
            players,
        });
    }

    fn send_inputs(&mut self, now: Instant) {
        let tick = Duration::from_secs(1) / TICK_RATE;
        if self.pending.is_empty()
            || !self.client.connected()
            || self.last_input_sent.is_some_and(|t| now - t < tick)
        {
            return;
        }
        let first_seq = self.pending[0].0;
        let moves = self.pending.iter().map(|&(_, d)| d).collect();
        match self
            .client
            .send(&Input { first_seq, moves }, Delivery::Unreliable)
        {
            Ok(()) => {
                self.last_input_sent = Some(now);
                self.inputs_sent += 1;
            }
            Err(e) => self.warn(format!("input not sent: {e}")),
        }
    }

    fn notice(&mut self, text: String) {
        self.push_log(LogLine { from: None, text });
    }

    fn warn(&mut self, text: String) {
        self.notice(text.clone());
        self.events.push_back(GameEvent::Warning(text));
    }

    fn push_log(&mut self, line: LogLine) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// The next game event, if any (drain after each update).
    pub fn poll_event(&mut self) -> Option<GameEvent> {
        self.events.pop_front()
    }

    /// Moves this player one cell: shown at once, sent with the next tick's
    /// input. False (and nothing queued) before the welcome, or when
    /// [`MAX_PENDING_MOVES`] moves already wait for the server.
    pub fn move_player(&mut self, dir: Dir) -> bool {
        if self.my_id.is_none() || self.pending.len() >= MAX_PENDING_MOVES {
            return false;
        }
        self.pending.push_back((self.next_seq, dir));
        self.next_seq += 1;
        true
    }

    /// Sends a chat line (sanitized and cut to [`MAX_CHAT_LEN`]); returns
    /// its chat id, or `None` for an empty line.
    pub fn say(&mut self, text: &str) -> Result<Option<u32>, SendError> {
        let text = sanitize(text.trim(), MAX_CHAT_LEN);
        if text.is_empty() {
            return Ok(None);
        }
        let chat_id = self.next_chat_id;
        self.client
            .send(&ChatSend { chat_id, text }, Delivery::ReliableOrdered)?;
        self.next_chat_id += 1;
        Ok(Some(chat_id))
    }

    /// Leaves the game, telling the server `reason`. Blocks until the
    /// goodbye datagrams are out (at most a second): with a conditioner on,
    /// they wait in its delay line, and would be lost with the client.
    pub fn disconnect(&mut self, reason: &str) {
        self.client.disconnect_with(reason);
        let end = Instant::now() + Duration::from_secs(1);
        while self.client.poll_timeout().is_some() && Instant::now() < end {
            self.client.update_timeout(Duration::from_millis(10));
        }
        while let Some(event) = self.client.poll_event() {
            self.handle(event);
        }
        if self.ended.is_none() {
            self.ended = Some(format!("left: {reason}"));
        }
    }

    /// This client's player id, once welcomed.
    pub fn my_id(&self) -> Option<PlayerId> {
        self.my_id
    }

    /// This client's name (as the server accepted it, once welcomed).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A player's name, if known.
    pub fn player_name(&self, id: PlayerId) -> Option<&str> {
        self.names.get(&id).map(String::as_str)
    }

    /// This player's position: the last snapshot's, with the moves the
    /// server has not applied yet replayed over it (client-side prediction).
    pub fn my_position(&self) -> Option<Pos> {
        let id = self.my_id?;
        let server = *self.positions.get(&id)?;
        Some(self.pending.iter().fold(server, |p, &(_, d)| step(p, d)))
    }

    /// Every player of the last snapshot, this one at its predicted position.
    pub fn players(&self) -> Vec<PlayerView> {
        let mine = self.my_position();
        self.positions
            .iter()
            .map(|(&id, &pos)| {
                let me = Some(id) == self.my_id;
                PlayerView {
                    id,
                    name: self.names.get(&id).cloned().unwrap_or_else(|| "?".into()),
                    pos: if me { mine.unwrap_or(pos) } else { pos },
                    me,
                }
            })
            .collect()
    }

    /// The chat and event log, oldest first.
    pub fn log(&self) -> impl DoubleEndedIterator<Item = &LogLine> + ExactSizeIterator {
        self.log.iter()
    }

    /// The last snapshot's tick.
    pub fn tick(&self) -> Option<u32> {
        self.last_tick
    }

    /// Snapshots applied, and snapshots dropped as older than one applied.
    pub fn snapshot_counts(&self) -> (u64, u64) {
        (self.snapshots, self.stale_snapshots)
    }

    /// Snapshot deltas dropped because their base was not kept (a correct
    /// server sends none: it uses only bases this client acknowledged).
    pub fn missing_bases(&self) -> u64 {
        self.missing_bases
    }

    /// Moves not yet applied by the server.
    pub fn pending_moves(&self) -> usize {
        self.pending.len()
    }

    /// Moves made so far.
    pub fn moves_made(&self) -> u32 {
        self.next_seq - 1
    }

    /// Input messages sent so far.
    pub fn inputs_sent(&self) -> u64 {
        self.inputs_sent
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        self.client.state()
    }

    /// Why the connection could not be made, once the handshake has failed
    /// (rejected, or no answer within the connect timeout).
    pub fn connect_failure(&self) -> Option<&str> {
        self.connect_failure.as_deref()
    }

    /// Why the session ended, once it has.
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    /// The connection's metrics.
    pub fn stats(&self) -> Stats {
        self.client.stats()
    }

    /// The connection's live statistics: RTT, loss, and bytes, messages
    /// and resends per second over the last second.
    pub fn live_stats(&self) -> LiveStats {
        self.client.live_stats()
    }
}
