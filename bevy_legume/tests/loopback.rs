//! Headless Bevy apps driven by `App::update()` over real UDP on
//! 127.0.0.1, with and without the network conditioner: typed messages
//! arrive exactly once, connection changes become Bevy messages on both
//! sides, run conditions follow the connection, and misconfiguration is
//! caught at setup. Each loop is bounded by a number of frames with a short
//! sleep between them; nothing asserts how long anything took.

use std::sync::Arc;
use std::time::Duration;

use bevy_app::prelude::*;
use bevy_ecs::prelude::*;
use bevy_legume::prelude::*;

/// Client to server, reliable and ordered.
#[derive(Clone, Debug, PartialEq, legume::Message)]
#[message(id = 30)]
struct Chat {
    seq: u32,
    text: String,
}

/// Server to client: the server's answer to one `Chat`.
#[derive(Clone, Debug, PartialEq, legume::Message)]
#[message(id = 31)]
struct Reply {
    seq: u32,
}

/// Registered in the factory but never added to the apps.
#[derive(Clone, Debug, PartialEq, legume::Message)]
#[message(id = 32)]
struct Notice {
    text: String,
}

/// Chats each client sends once connected, `CHATS_PER_FRAME` a frame, so
/// that they travel in many packets (and the conditioner drops some).
const CHATS: u32 = 200;
const CHATS_PER_FRAME: u32 = 5;
/// Frames a test may run before it gives up (about 10 s at 1 ms a frame
/// on an idle machine; far more than any exchange here needs).
const MAX_FRAMES: usize = 10_000;
const FRAME_SLEEP: Duration = Duration::from_millis(1);

fn factory() -> Arc<legume::MessageFactory> {
    let mut factory = legume::MessageFactory::new();
    factory.register::<Chat>().unwrap();
    factory.register::<Reply>().unwrap();
    factory.register::<Notice>().unwrap();
    Arc::new(factory)
}

fn config(loss: f64, seed: u64) -> Config {
    let mut config = Config {
        // A lost disconnect still ends the connection within the bound.
        timeout: Duration::from_secs(3),
        ..Config::default()
    };
    if loss > 0.0 {
        config.driver.conditioner = Some(Conditioner::symmetric(LinkConditions::lossy(loss), seed));
    }
    config
}

/// What a server app saw.
#[derive(Default, Resource)]
struct ServerLog {
    connected: Vec<PeerId>,
    disconnected: Vec<(PeerId, DisconnectReason)>,
    chats: Vec<(PeerId, u32)>,
}

/// What a client app saw.
#[derive(Default, Resource)]
struct ClientLog {
    connected: usize,
    rejected: usize,
    disconnected: Vec<DisconnectReason>,
    replies: Vec<u32>,
    notices: Vec<String>,
    /// Frames on which a system gated by `client_connected` ran.
    connected_frames: usize,
}

/// A server that answers every `Chat` with a `Reply` to its sender.
fn server_app(config: Config) -> App {
    let mut app = App::new();
    app.add_plugins(LegumeServerPlugin::new(factory(), config))
        .add_legume_message::<Chat>()
        .init_resource::<ServerLog>()
        .add_systems(Update, (server_log, answer_chats));
    app.world_mut()
        .resource_mut::<LegumeServer>()
        .listen("127.0.0.1:0")
        .unwrap();
    app
}

fn server_log(
    mut log: ResMut<ServerLog>,
    mut connected: MessageReader<ClientConnected>,
    mut disconnected: MessageReader<ClientDisconnected>,
) {
    log.connected.extend(connected.read().map(|c| c.client));
    log.disconnected
        .extend(disconnected.read().map(|d| (d.client, d.reason.clone())));
}

fn answer_chats(
    mut chats: MessageReader<FromClient<Chat>>,
    mut server: ResMut<LegumeServer>,
    mut log: ResMut<ServerLog>,
) {
    for chat in chats.read() {
        log.chats.push((chat.client, chat.message.seq));
        let reply = Reply {
            seq: chat.message.seq,
        };
        // Fails only if the sender left in the frame its chat arrived in.
        let _ = server.send(chat.client, &reply, Delivery::Reliable);
    }
}

/// A client that sends `CHATS` chats as soon as it is connected.
fn client_app(config: Config, server: std::net::SocketAddr) -> App {
    let mut app = App::new();
    app.add_plugins(LegumeClientPlugin::new(factory(), config))
        .add_legume_message::<Reply>()
        .init_resource::<ClientLog>()
        .add_systems(Update, client_log)
        .add_systems(
            Update,
            (send_chats, count_connected_frames).run_if(client_connected),
        );
    app.world_mut()
        .resource_mut::<LegumeClient>()
        .connect(server)
        .unwrap();
    app
}

fn client_log(
    mut log: ResMut<ClientLog>,
    mut connected: MessageReader<ConnectedToServer>,
    mut rejected: MessageReader<ConnectRejected>,
    mut disconnected: MessageReader<DisconnectedFromServer>,
    mut replies: MessageReader<FromServer<Reply>>,
    mut unrouted: MessageReader<UnroutedFromServer>,
) {
    log.connected += connected.read().count();
    log.rejected += rejected.read().count();
    log.disconnected
        .extend(disconnected.read().map(|d| d.reason.clone()));
    log.replies.extend(replies.read().map(|r| r.message.seq));
    for u in unrouted.read() {
        if let Some(notice) = u.message.downcast_ref::<Notice>() {
            log.notices.push(notice.text.clone());
        }
    }
}

fn send_chats(mut next: Local<u32>, mut client: ResMut<LegumeClient>) {
    let end = (*next + CHATS_PER_FRAME).min(CHATS);
    for seq in *next..end {
        let chat = Chat {
            seq,
            text: format!("chat number {seq} from a Bevy system"),
        };
        client.send(&chat, Delivery::ReliableOrdered).unwrap();
    }
    *next = end;
}

fn count_connected_frames(mut log: ResMut<ClientLog>) {
    log.connected_frames += 1;
}

/// Updates every app once per frame until `done` holds; false if it never
/// did within `MAX_FRAMES`.
fn run_until(apps: &mut [&mut App], mut done: impl FnMut(&mut [&mut App]) -> bool) -> bool {
    for _ in 0..MAX_FRAMES {
        for app in apps.iter_mut() {
            app.update();
        }
        if done(apps) {
            return true;
        }
        std::thread::sleep(FRAME_SLEEP);
    }
    false
}

fn server_addr(app: &App) -> std::net::SocketAddr {
    app.world().resource::<LegumeServer>().local_addr().unwrap()
}

fn client_log_of(app: &App) -> &ClientLog {
    app.world().resource::<ClientLog>()
}

fn server_log_of(app: &App) -> &ServerLog {
    app.world().resource::<ServerLog>()
}

/// Connects two clients, exchanges `CHATS` chats and replies each, then the
/// clients leave; checks exactly-once delivery and every connection event.
fn exchange(loss: f64) {
    let mut server = server_app(config(loss, 1));
    let addr = server_addr(&server);
    let mut ann = client_app(config(loss, 2), addr);
    let mut bob = client_app(config(loss, 3), addr);

    let all_replied = run_until(&mut [&mut server, &mut ann, &mut bob], |apps| {
        apps[1..]
            .iter()
            .all(|app| client_log_of(app).replies.len() >= CHATS as usize)
    });
    assert!(
        all_replied,
        "replies: ann {:?}, bob {:?}",
        client_log_of(&ann).replies,
        client_log_of(&bob).replies
    );

    let ann_addr = ann.world().resource::<LegumeClient>().local_addr().unwrap();
    let bob_addr = bob.world().resource::<LegumeClient>().local_addr().unwrap();
    // The server names them by their ClientIds.
    let id_of = |addr| {
        server
            .world()
            .resource::<LegumeServer>()
            .client_id(addr)
            .expect("connected")
    };
    let (ann_id, bob_id) = (id_of(ann_addr), id_of(bob_addr));
    for app in [&mut ann, &mut bob] {
        app.world_mut().resource_mut::<LegumeClient>().disconnect();
    }
    let all_gone = run_until(&mut [&mut server, &mut ann, &mut bob], |apps| {
        server_log_of(apps[0]).disconnected.len() >= 2
            && apps[1..]
                .iter()
                .all(|app| !client_log_of(app).disconnected.is_empty())
    });
    assert!(
        all_gone,
        "disconnects: {:?}",
        server_log_of(&server).disconnected
    );
    // A few more frames: nothing may arrive twice after the fact.
    run_until(&mut [&mut server, &mut ann, &mut bob], after_frames(20));

    let log = server_log_of(&server);
    let mut connected = log.connected.clone();
    connected.sort();
    let mut expected = vec![ann_id, bob_id];
    expected.sort();
    assert_eq!(connected, expected, "each client connected once");
    for peer in [ann_id, bob_id] {
        let seqs: Vec<u32> = log
            .chats
            .iter()
            .filter(|(p, _)| *p == peer)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(
            seqs,
            (0..CHATS).collect::<Vec<_>>(),
            "ordered chats from {peer}, exactly once"
        );
        let gone: Vec<_> = log
            .disconnected
            .iter()
            .filter(|(p, _)| *p == peer)
            .collect();
        assert_eq!(gone.len(), 1, "{peer} disconnected once: {gone:?}");
    }
    for app in [&ann, &bob] {
        let log = client_log_of(app);
        let mut replies = log.replies.clone();
        replies.sort();
        assert_eq!(
            replies,
            (0..CHATS).collect::<Vec<_>>(),
            "each reply exactly once"
        );
        assert_eq!(log.connected, 1);
        assert_eq!(log.rejected, 0);
        assert_eq!(log.disconnected.len(), 1);
        assert!(
            matches!(log.disconnected[0], DisconnectReason::Local(_)),
            "{:?}",
            log.disconnected
        );
        assert!(
            log.connected_frames > 0,
            "client_connected held while connected"
        );
    }
}

/// A `done` predicate that turns true after `frames` calls.
fn after_frames(frames: usize) -> impl FnMut(&mut [&mut App]) -> bool {
    let mut left = frames;
    move |_| {
        left = left.saturating_sub(1);
        left == 0
    }
}

#[test]
fn typed_messages_over_loopback_arrive_exactly_once() {
    exchange(0.0);
}

#[test]
fn typed_messages_through_five_percent_loss_arrive_exactly_once() {
    exchange(0.05);
}

/// Runs until the client is connected and the server has seen it.
fn connect(server: &mut App, client: &mut App) {
    let connected = run_until(&mut [server, client], |apps| {
        client_log_of(apps[1]).connected == 1 && server_log_of(apps[0]).connected.len() == 1
    });
    assert!(connected, "the client never connected");
}

#[test]
fn a_kick_is_seen_on_both_sides() {
    let mut server = server_app(config(0.0, 0));
    let mut client = client_app(config(0.0, 0), server_addr(&server));
    connect(&mut server, &mut client);

    let peer = server_log_of(&server).connected[0];
    server
        .world_mut()
        .resource_mut::<LegumeServer>()
        .disconnect(peer, "kicked");
    let gone = run_until(&mut [&mut server, &mut client], |apps| {
        !server_log_of(apps[0]).disconnected.is_empty()
            && !client_log_of(apps[1]).disconnected.is_empty()
    });
    assert!(gone, "the kick was not seen on both sides");
    assert_eq!(
        server_log_of(&server).disconnected,
        [(peer, DisconnectReason::Local("kicked".into()))]
    );
    assert_eq!(
        client_log_of(&client).disconnected,
        [DisconnectReason::Remote("kicked".into())]
    );
}

#[test]
fn app_exit_tells_the_server() {
    let mut server = server_app(config(0.0, 0));
    let mut client = client_app(config(0.0, 0), server_addr(&server));
    connect(&mut server, &mut client);

    client.world_mut().write_message(AppExit::Success);
    let gone = run_until(&mut [&mut server, &mut client], |apps| {
        !server_log_of(apps[0]).disconnected.is_empty()
    });
    assert!(gone, "the server never saw the client leave");
    assert_eq!(
        server_log_of(&server).disconnected[0].1,
        DisconnectReason::Remote("the application exited".into())
    );
}

#[test]
fn run_conditions_follow_the_connection() {
    use bevy_ecs::system::RunSystemOnce;
    fn check(app: &mut App) -> [bool; 5] {
        let world = app.world_mut();
        [
            world.run_system_once(client_connecting).unwrap(),
            world.run_system_once(client_connected).unwrap(),
            world.run_system_once(client_disconnected).unwrap(),
            world.run_system_once(server_running).unwrap(),
            world.run_system_once(server_has_peers).unwrap(),
        ]
    }
    // Neither side yet: only "disconnected" holds.
    assert_eq!(check(&mut App::new()), [false, false, true, false, false]);

    let mut server = server_app(config(0.0, 0));
    assert_eq!(check(&mut server), [false, false, true, true, false]);
    let mut client = client_app(config(0.0, 0), server_addr(&server));
    assert_eq!(check(&mut client), [true, false, false, false, false]);

    connect(&mut server, &mut client);
    assert_eq!(check(&mut client), [false, true, false, false, false]);
    assert_eq!(check(&mut server), [false, false, true, true, true]);

    client
        .world_mut()
        .resource_mut::<LegumeClient>()
        .disconnect();
    let gone = run_until(&mut [&mut server, &mut client], |apps| {
        !server_log_of(apps[0]).disconnected.is_empty()
    });
    assert!(gone);
    assert_eq!(check(&mut client), [false, false, true, false, false]);
    assert_eq!(check(&mut server), [false, false, true, true, false]);
}

#[test]
fn messages_not_added_to_the_app_arrive_unrouted() {
    let mut server = server_app(config(0.0, 0));
    let mut client = client_app(config(0.0, 0), server_addr(&server));
    connect(&mut server, &mut client);

    let notice = Notice {
        text: "welcome".into(),
    };
    let peers = server
        .world_mut()
        .resource_mut::<LegumeServer>()
        .send_to_all(&notice, Delivery::ReliableOrdered)
        .expect("encodes");
    assert_eq!((peers.sent, peers.refused.len()), (1, 0));
    let arrived = run_until(&mut [&mut server, &mut client], |apps| {
        !client_log_of(apps[1]).notices.is_empty()
    });
    assert!(arrived, "the notice never arrived");
    run_until(&mut [&mut server, &mut client], after_frames(20));
    assert_eq!(client_log_of(&client).notices, ["welcome"]);
}

#[test]
fn the_conditioner_changes_only_between_connections() {
    let mut server = server_app(config(0.0, 0));
    let mut client = client_app(config(0.0, 0), server_addr(&server));
    connect(&mut server, &mut client);

    let lossy = Conditioner::symmetric(LinkConditions::lossy(0.05), 9);
    let mut res = client.world_mut().resource_mut::<LegumeClient>();
    assert!(res.conditioner().is_none());
    assert_eq!(res.set_conditioner(Some(lossy)), Err(ConditionerBusy));
    res.disconnect();
    assert_eq!(res.set_conditioner(Some(lossy)), Ok(()));
    assert_eq!(res.conditioner(), Some(&lossy));
    assert!(res.disconnected(), "a fresh client, not connected");
    let addr = server_addr(&server);
    client
        .world_mut()
        .resource_mut::<LegumeClient>()
        .connect(addr)
        .unwrap();
    let again = run_until(&mut [&mut server, &mut client], |apps| {
        client_log_of(apps[1]).connected == 2
    });
    assert!(
        again,
        "the client did not reconnect through the conditioner"
    );
}

/// A listen server: the client and the server plugins in one app, which
/// talks to itself.
#[test]
fn one_app_can_be_client_and_server() {
    let mut app = server_app(config(0.0, 0));
    let addr = server_addr(&app);
    app.add_plugins(LegumeClientPlugin::new(factory(), config(0.0, 0)))
        .add_legume_message::<Reply>()
        .init_resource::<ClientLog>()
        .add_systems(Update, client_log)
        .add_systems(Update, send_chats.run_if(client_connected));
    app.world_mut()
        .resource_mut::<LegumeClient>()
        .connect(addr)
        .unwrap();
    let replied = run_until(&mut [&mut app], |apps| {
        client_log_of(apps[0]).replies.len() >= CHATS as usize
    });
    assert!(replied, "replies: {:?}", client_log_of(&app).replies);
    let chats: Vec<u32> = server_log_of(&app).chats.iter().map(|(_, s)| *s).collect();
    assert_eq!(chats, (0..CHATS).collect::<Vec<_>>());
}
