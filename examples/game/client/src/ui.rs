//! The terminal client: the grid with every player on it, a status line
//! with the connection's RTT, loss and bandwidth, and a chat.
//!
//! Keys: arrows, WASD or HJKL move; Enter opens the chat line (Enter sends,
//! Esc cancels); Esc, q or Ctrl-C quits.
//!
//! The screen is drawn with `crossterm` in the terminal's alternate screen,
//! in raw mode; both are undone on exit, on error and on panic.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::style::{Attribute, Color, Print, ResetColor, SetAttribute, SetForegroundColor};
use crossterm::{cursor, execute, queue, terminal};
use legume::prelude::*;
use legume_game_protocol::rates::human_rate;
use legume_game_protocol::world::{glyph, is_wall, HEIGHT, WIDTH};
use legume_game_protocol::{Dir, Pos, MAX_CHAT_LEN};

use crate::session::GameSession;

/// What the terminal client needs to start.
#[derive(Clone, Debug)]
pub struct UiConfig {
    /// The server's address.
    pub server: SocketAddr,
    /// The player's name.
    pub name: String,
    /// The connection's config (see `NetFlags::config`).
    pub net: Config,
    /// A description of the conditioner for the title line, if one is on.
    pub conditions: Option<String>,
}

/// Restores the terminal when dropped (also while unwinding from a panic).
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> io::Result<Self> {
        terminal::enable_raw_mode()?;
        let guard = TerminalGuard;
        execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(
            io::stdout(),
            ResetColor,
            cursor::Show,
            terminal::LeaveAlternateScreen
        );
        let _ = terminal::disable_raw_mode();
    }
}

/// What a key press asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Move(Dir),
    OpenChat,
    Quit,
    Type(char),
    Backspace,
    Send,
    CancelChat,
    None,
}

/// Maps a key to an action; `chatting` when the chat line is open.
fn action(key: &KeyEvent, chatting: bool) -> Action {
    if !matches!(key.kind, KeyEventKind::Press | KeyEventKind::Repeat) {
        return Action::None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('d')) {
        return Action::Quit;
    }
    if chatting {
        return match key.code {
            KeyCode::Enter => Action::Send,
            KeyCode::Esc => Action::CancelChat,
            KeyCode::Backspace => Action::Backspace,
            KeyCode::Char(c) if !ctrl => Action::Type(c),
            _ => Action::None,
        };
    }
    match key.code {
        KeyCode::Up | KeyCode::Char('w' | 'W' | 'k') => Action::Move(Dir::Up),
        KeyCode::Down | KeyCode::Char('s' | 'S' | 'j') => Action::Move(Dir::Down),
        KeyCode::Left | KeyCode::Char('a' | 'A' | 'h') => Action::Move(Dir::Left),
        KeyCode::Right | KeyCode::Char('d' | 'D' | 'l') => Action::Move(Dir::Right),
        KeyCode::Enter => Action::OpenChat,
        KeyCode::Esc | KeyCode::Char('q' | 'Q') => Action::Quit,
        _ => Action::None,
    }
}

/// Runs the terminal client until the player quits; returns a line saying
/// how it ended.
pub fn run(config: UiConfig) -> Result<String, Box<dyn std::error::Error>> {
    let mut session = GameSession::connect(config.server, &config.name, config.net.clone())?;
    let guard = TerminalGuard::enter()?;
    let mut out = io::BufWriter::new(io::stdout());
    let mut chat: Option<String> = None;
    // A message for the bottom line, shown for a few seconds.
    let mut flash: Option<(String, Instant)> = None;
    let mut last_draw: Option<Instant> = None;
    let frame = Duration::from_secs(1) / 30;
    loop {
        let mut dirty = false;
        // Keys: wait a little for the first, then take all that are queued.
        let mut wait = Duration::from_millis(5);
        while event::poll(wait)? {
            wait = Duration::ZERO;
            let TermEvent::Key(key) = event::read()? else {
                dirty = true; // a resize, or focus: redraw
                continue;
            };
            dirty = true;
            match action(&key, chat.is_some()) {
                Action::Move(dir) => {
                    session.move_player(dir);
                }
                Action::OpenChat => chat = Some(String::new()),
                Action::Type(c) => {
                    if let Some(line) = &mut chat {
                        if line.len() + c.len_utf8() <= MAX_CHAT_LEN {
                            line.push(c);
                        }
                    }
                }
                Action::Backspace => {
                    if let Some(line) = &mut chat {
                        line.pop();
                    }
                }
                Action::Send => {
                    if let Some(line) = chat.take() {
                        if let Err(e) = session.say(&line) {
                            chat = Some(line);
                            flash = Some((format!("not sent: {e}"), Instant::now()));
                        }
                    }
                }
                Action::CancelChat => chat = None,
                Action::Quit => {
                    session.disconnect("player quit");
                    drop(guard);
                    return Ok(format!(
                        "left the game after {} moves; {}",
                        session.moves_made(),
                        session.ended().unwrap_or("bye")
                    ));
                }
                Action::None => {}
            }
        }
        session.update(Duration::ZERO);
        while session.poll_event().is_some() {
            dirty = true;
        }
        if let Some(why) = session.connect_failure() {
            // Nothing to play: leave the terminal at once, saying why.
            drop(guard);
            return Err(format!("cannot connect to {}: {why}", config.server).into());
        }
        if flash
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() > Duration::from_secs(3))
        {
            flash = None;
        }
        if dirty || last_draw.is_none_or(|t| t.elapsed() >= frame) {
            let bottom = Bottom {
                chat: chat.as_deref(),
                flash: flash.as_ref().map(|(text, _)| text.as_str()),
            };
            draw(&mut out, &session, &config, &bottom)?;
            last_draw = Some(Instant::now());
        }
    }
}

/// `text` cut to `width` characters.
fn fit(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}

/// The lines of the screen as plain text; `draw` adds the colours.
struct Screen {
    lines: Vec<String>,
}

/// What the bottom line shows.
struct Bottom<'a> {
    /// The chat line being typed, if open.
    chat: Option<&'a str>,
    /// A passing message (a chat line that was not sent).
    flash: Option<&'a str>,
}

/// Lays out the whole screen for a terminal `cols` × `rows`.
fn layout(
    session: &GameSession,
    config: &UiConfig,
    bottom: &Bottom<'_>,
    cols: usize,
    rows: usize,
) -> Screen {
    let players = session.players();
    let me = session.my_id();
    let mut lines = Vec::with_capacity(rows);

    let who = match (me, session.my_position()) {
        (Some(id), Some(p)) => format!(
            "you are @ = {} (player {id}) at {},{}",
            session.name(),
            p.x,
            p.y
        ),
        (Some(id), None) => format!("you are @ = {} (player {id})", session.name()),
        _ => match session.ended() {
            Some(why) => format!("not connected ({why}); q quits"),
            None => format!("connecting to {}", config.server),
        },
    };
    let tick = session
        .tick()
        .map_or(String::new(), |t| format!(" · tick {t}"));
    lines.push(format!(" legume game · {who}{tick}"));

    // The grid, with the legend to its right.
    let mut legend: Vec<String> = vec![format!("players: {}", players.len())];
    for p in &players {
        let g = if p.me { '@' } else { glyph(p.id) };
        legend.push(format!(
            "{g} {}{}",
            p.name,
            if p.me { " (you)" } else { "" }
        ));
    }
    for y in 0..HEIGHT {
        let mut row: String = (0..WIDTH)
            .map(|x| if is_wall(Pos { x, y }) { '#' } else { ' ' })
            .collect();
        let mut cells: Vec<char> = row.chars().collect();
        // Others first, so this player is drawn on top when they share a cell.
        for p in players
            .iter()
            .filter(|p| !p.me)
            .chain(players.iter().filter(|p| p.me))
        {
            if p.pos.y == y {
                if let Some(c) = cells.get_mut(usize::from(p.pos.x)) {
                    *c = if p.me { '@' } else { glyph(p.id) };
                }
            }
        }
        row = cells.into_iter().collect();
        if let Some(l) = legend.get(usize::from(y)) {
            row.push_str("  ");
            row.push_str(l);
        }
        lines.push(format!(" {row}"));
    }

    let live = session.live_stats();
    lines.push(format!(
        " RTT {:.0} ms ±{:.0} · loss {:.1}% · in {} · out {} · resends {:.1}/s · unacked moves {}",
        live.rtt_ms,
        live.rtt_var_ms,
        live.packet_loss * 100.0,
        human_rate(live.in_bytes_per_s),
        human_rate(live.out_bytes_per_s),
        live.resends_per_s,
        session.pending_moves()
    ));
    if let Some(c) = &config.conditions {
        lines.push(format!(" conditioner: {c}"));
    }

    // The chat log fills what is left above the bottom line.
    let room = rows.saturating_sub(lines.len() + 1);
    let log: Vec<String> = session
        .log()
        .rev()
        .take(room)
        .map(|l| match l.from {
            Some(id) => {
                let name = session.player_name(id).unwrap_or("?");
                format!(" <{name}> {}", l.text)
            }
            None => format!(" * {}", l.text),
        })
        .collect();
    lines.extend(log.into_iter().rev());
    while lines.len() + 1 < rows {
        lines.push(String::new());
    }
    lines.push(match (bottom.chat, bottom.flash) {
        (Some(text), _) => format!(" say> {text}"),
        (None, Some(flash)) => format!(" ! {flash}"),
        (None, None) => " arrows/WASD move · Enter chat · Esc/q quit".to_string(),
    });
    for l in &mut lines {
        *l = fit(l, cols);
    }
    Screen { lines }
}

fn draw(
    out: &mut impl Write,
    session: &GameSession,
    config: &UiConfig,
    bottom: &Bottom<'_>,
) -> io::Result<()> {
    let (cols, rows) = terminal::size()?;
    let screen = layout(
        session,
        config,
        bottom,
        usize::from(cols),
        usize::from(rows),
    );
    let grid_rows = 1..=usize::from(HEIGHT);
    for (i, line) in screen.lines.iter().enumerate() {
        queue!(out, cursor::MoveTo(0, i as u16))?;
        if grid_rows.contains(&i) {
            // Colour: walls dim, this player bold yellow, others cyan.
            for (x, c) in line.chars().enumerate() {
                let in_grid = (1..=usize::from(WIDTH)).contains(&x);
                match c {
                    '#' if in_grid => queue!(
                        out,
                        SetForegroundColor(Color::DarkGrey),
                        Print(c),
                        ResetColor
                    )?,
                    '@' if in_grid => queue!(
                        out,
                        SetForegroundColor(Color::Yellow),
                        SetAttribute(Attribute::Bold),
                        Print(c),
                        SetAttribute(Attribute::Reset),
                        ResetColor
                    )?,
                    c if in_grid && c != ' ' => {
                        queue!(out, SetForegroundColor(Color::Cyan), Print(c), ResetColor)?
                    }
                    c => queue!(out, Print(c))?,
                }
            }
        } else {
            queue!(out, Print(line))?;
        }
        queue!(out, terminal::Clear(terminal::ClearType::UntilNewLine))?;
    }
    if bottom.chat.is_some() {
        let last = screen.lines.len().saturating_sub(1);
        let col = screen.lines.last().map_or(0, |l| l.chars().count());
        queue!(out, cursor::MoveTo(col as u16, last as u16), cursor::Show)?;
    } else {
        queue!(out, cursor::Hide)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventState;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    #[test]
    fn keys_map_to_actions() {
        let none = KeyModifiers::NONE;
        assert_eq!(
            action(&key(KeyCode::Up, none), false),
            Action::Move(Dir::Up)
        );
        assert_eq!(
            action(&key(KeyCode::Char('a'), none), false),
            Action::Move(Dir::Left)
        );
        assert_eq!(action(&key(KeyCode::Enter, none), false), Action::OpenChat);
        assert_eq!(action(&key(KeyCode::Char('q'), none), false), Action::Quit);
        // While chatting, letters are text and q does not quit.
        assert_eq!(
            action(&key(KeyCode::Char('q'), none), true),
            Action::Type('q')
        );
        assert_eq!(action(&key(KeyCode::Enter, none), true), Action::Send);
        assert_eq!(action(&key(KeyCode::Esc, none), true), Action::CancelChat);
        assert_eq!(
            action(&key(KeyCode::Char('c'), KeyModifiers::CONTROL), true),
            Action::Quit
        );
        let mut release = key(KeyCode::Up, none);
        release.kind = KeyEventKind::Release;
        assert_eq!(action(&release, false), Action::None);
    }

    #[test]
    fn layout_fits_the_terminal_before_connecting() {
        // A session to a port nobody listens on: still connecting.
        let server: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let session = GameSession::connect(server, "ann", Config::default()).unwrap();
        let config = UiConfig {
            server,
            name: "ann".into(),
            net: Config::default(),
            conditions: Some("loss 10%".into()),
        };
        let bottom = Bottom {
            chat: Some("hello"),
            flash: None,
        };
        let screen = layout(&session, &config, &bottom, 60, 30);
        assert_eq!(screen.lines.len(), 30);
        assert!(screen.lines.iter().all(|l| l.chars().count() <= 60));
        assert!(screen.lines[0].contains("connecting to 127.0.0.1:9"));
        assert_eq!(
            screen.lines[1].trim(),
            "#".repeat(usize::from(WIDTH)) + "  players: 0"
        );
        assert_eq!(screen.lines[29], " say> hello");
        assert!(screen.lines.iter().any(|l| l == " conditioner: loss 10%"));
        let bottom = Bottom {
            chat: None,
            flash: Some("not sent: not connected"),
        };
        let screen = layout(&session, &config, &bottom, 60, 30);
        assert_eq!(screen.lines[29], " ! not sent: not connected");
    }
}
