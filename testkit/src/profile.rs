//! Temporary profiles: engines created with the insecure test KDF, and introduced to each other.

use std::path::Path;

use tern_node::engine::Engine;
use tern_node::store::{KdfParams, Password};

/// The password of every test profile.
pub const PASSWORD: &str = "correct horse battery staple";

/// [`PASSWORD`] as the store takes it.
pub fn password() -> Password {
    Password::new(PASSWORD.into())
}

/// A new profile named `name` in `dir`, with the fast test KDF.
pub fn create(dir: &Path, name: &str) -> Engine {
    Engine::create(dir, name, &password(), KdfParams::INSECURE_FOR_TESTS).unwrap()
}

/// Opens the profile in `dir` with [`PASSWORD`].
pub fn open(dir: &Path) -> Engine {
    Engine::open(dir, &password()).unwrap()
}

/// Makes each of `engines` a contact of every other, under its own display name.
pub fn introduce(engines: &mut [&mut Engine]) {
    let links: Vec<String> = engines.iter().map(|e| e.card().invite_link()).collect();
    for (i, engine) in engines.iter_mut().enumerate() {
        for (j, link) in links.iter().enumerate() {
            if i != j {
                engine.add_contact(link, None).unwrap();
            }
        }
    }
}

/// A profile in each of `dirs`, named after `names` in turn, each the others' contact.
pub fn introduced<P: AsRef<Path>>(dirs: &[P], names: &[&str]) -> Vec<Engine> {
    let mut engines: Vec<Engine> = dirs
        .iter()
        .zip(names)
        .map(|(d, n)| create(d.as_ref(), n))
        .collect();
    let mut refs: Vec<&mut Engine> = engines.iter_mut().collect();
    introduce(&mut refs);
    engines
}

/// [`pair`], with both cards already naming `mailbox` (as a node configured with it publishes), so starting
/// them with that mailbox re-issues no card and sends no card update (docs/protocol.md §12.3).
pub fn pair_with_mailbox(a: &Path, b: &Path, mailbox: &libp2p::Multiaddr) -> (Engine, Engine) {
    let server = tern_node::node::mailbox_node_of(mailbox).expect("a mailbox address with /p2p/");
    let mut alice = create(a, "Alice");
    let mut bob = create(b, "Bob");
    for engine in [&mut alice, &mut bob] {
        engine.set_mailboxes(vec![server.clone()]).unwrap();
    }
    introduce(&mut [&mut alice, &mut bob]);
    (alice, bob)
}

/// Alice in `a` and Bob in `b`, each the other's contact.
pub fn pair(a: &Path, b: &Path) -> (Engine, Engine) {
    let mut alice = create(a, "Alice");
    let mut bob = create(b, "Bob");
    introduce(&mut [&mut alice, &mut bob]);
    (alice, bob)
}
