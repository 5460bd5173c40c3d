//! Factories built by separate crates of an app merge into one, with clash
//! errors that name both Rust types. The modules below stand for crates.

use std::sync::Arc;
use std::thread;

use legume::prelude::*;
use legume::{Reader, Writer};

/// Messages of a "lobby" crate.
mod lobby {
    use legume::prelude::*;

    #[derive(Debug, PartialEq, Message)]
    #[message(id = 30)]
    pub struct Join {
        pub name: String,
    }

    #[derive(Debug, PartialEq, Message)]
    #[message(id = 31)]
    pub struct Leave;

    pub fn factory() -> Result<MessageFactory, RegistryError> {
        let mut f = MessageFactory::new();
        f.register::<Join>()?.register::<Leave>()?;
        Ok(f)
    }
}

/// Messages of a "combat" crate.
mod combat {
    use legume::prelude::*;

    #[derive(Debug, PartialEq, Message)]
    #[message(id = 40)]
    pub struct Hit {
        pub target: u32,
        pub damage: u16,
    }

    /// Deliberately takes lobby's id 30.
    #[derive(Debug, PartialEq, Message)]
    #[message(id = 30)]
    pub struct Shoot;

    /// Deliberately takes lobby's name "Join".
    #[derive(Debug, PartialEq, Message)]
    #[message(id = 41, name = "Join")]
    pub struct JoinSquad;

    pub fn factory() -> Result<MessageFactory, RegistryError> {
        let mut f = MessageFactory::new();
        f.register::<Hit>()?;
        Ok(f)
    }
}

#[test]
fn factories_of_two_crates_merge() {
    let mut app = lobby::factory().unwrap();
    app.merge(&combat::factory().unwrap()).unwrap();
    assert_eq!(app.len(), 3);
    assert!(app.contains::<lobby::Join>() && app.contains::<combat::Hit>());
    assert_eq!(app.by_name("Hit").map(|i| i.type_id()), Some(40));
    assert_eq!(app.by_id(31).map(|i| i.name()), Some("Leave"));

    let hit = combat::Hit {
        target: 9,
        damage: 250,
    };
    let msg = app.decode(&hit.to_bytes().unwrap()).unwrap();
    assert!(msg.is::<combat::Hit>());
    assert_eq!(msg.downcast::<combat::Hit>().unwrap().as_ref(), &hit);
}

#[test]
fn id_clash_names_both_types() {
    let mut combat = combat::factory().unwrap();
    combat.register::<combat::Shoot>().unwrap();
    let mut app = lobby::factory().unwrap();
    let err = app.merge(&combat).unwrap_err();
    assert_eq!(
        err,
        RegistryError::IdTaken {
            id: 30,
            existing: "factory_merge::lobby::Join",
            new: "factory_merge::combat::Shoot",
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("factory_merge::lobby::Join")
            && text.contains("factory_merge::combat::Shoot")
    );
    // The failed merge added nothing, not even the non-clashing Hit.
    assert_eq!(app.len(), 2);
    assert!(!app.contains::<combat::Hit>());
}

#[test]
fn name_clash_names_both_types() {
    let mut app = lobby::factory().unwrap();
    let err = app.register::<combat::JoinSquad>().unwrap_err();
    assert_eq!(
        err,
        RegistryError::NameTaken {
            name: "Join",
            existing: "factory_merge::lobby::Join",
            new: "factory_merge::combat::JoinSquad",
        }
    );
}

#[test]
fn registering_a_type_twice_or_merging_overlaps_is_harmless() {
    let mut app = lobby::factory().unwrap();
    app.register::<lobby::Join>().unwrap();
    app.merge(&lobby::factory().unwrap()).unwrap();
    assert_eq!(app.len(), 2);
}

/// A hand-written message that asks for a protocol id.
#[derive(Debug)]
struct Sneaky;

impl Encode for Sneaky {
    fn encoded_len(&self) -> usize {
        0
    }
    fn encode(&self, _: &mut Writer<'_>) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl Decode for Sneaky {
    const MIN_LEN: usize = 0;
    fn decode(_: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Sneaky)
    }
}

impl Message for Sneaky {
    const TYPE_ID: u8 = 7;
    const NAME: &'static str = "Sneaky";
}

#[test]
fn reserved_ids_are_refused() {
    let err = MessageFactory::new().register::<Sneaky>().unwrap_err();
    assert_eq!(
        err,
        RegistryError::ReservedId {
            id: 7,
            ty: "factory_merge::Sneaky"
        }
    );
}

#[test]
fn unknown_ids_and_trailing_bytes_are_errors() {
    let app = lobby::factory().unwrap();
    assert_eq!(
        app.decode(&[99]).unwrap_err(),
        DecodeError::UnknownTypeId(99)
    );
    assert_eq!(
        app.decode(&[31, 0]).unwrap_err(),
        DecodeError::TrailingBytes(1)
    );
    assert!(matches!(
        app.decode(&[]).unwrap_err(),
        DecodeError::UnexpectedEnd { .. }
    ));
}

#[test]
fn one_factory_is_shared_across_threads() {
    let app = Arc::new(lobby::factory().unwrap());
    let bytes = lobby::Join { name: "ann".into() }.to_bytes().unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (app, bytes) = (Arc::clone(&app), bytes.clone());
            thread::spawn(move || app.decode(&bytes).unwrap().message_name())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "Join");
    }
}
