use legume::prelude::*;

#[derive(Debug, PartialEq, Message)]
#[message(id = 20)]
struct Ping;

#[derive(Debug, PartialEq, Message)]
#[message(id = 255, name = "Move")]
struct MovePlayer(u8, [f32; 3]);

#[derive(Debug, PartialEq, Codec)]
enum Action {
    Idle,
    Walk(u8),
    Say {
        #[field(max_len = 32)]
        text: String,
    },
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 21)]
struct Command {
    #[field(fixed = 16)]
    player: String,
    #[field(max_len = 4)]
    actions: Vec<Action>,
}

#[derive(Debug, PartialEq, MessageSet)]
enum Inbox {
    Ping(Ping),
    Move(MovePlayer),
    Command(Command),
}

fn main() {
    assert_eq!(<Ping as Message>::TYPE_ID, 20);
    assert_eq!(<MovePlayer as Message>::NAME, "Move");
    assert_eq!(<Command as Message>::NAME, "Command");

    let cmd = Command {
        player: "ann".into(),
        actions: vec![
            Action::Idle,
            Action::Walk(2),
            Action::Say { text: "hi".into() },
        ],
    };
    let bytes = cmd.to_bytes().unwrap();
    assert_eq!(Inbox::decode_message(&bytes).unwrap(), Inbox::Command(cmd));
}
