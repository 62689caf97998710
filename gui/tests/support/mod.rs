//! What the app tests share: an app over a loopback-only node, and reading and driving it through the
//! accessibility tree. Each test binary uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use tern_gui::model::Screen;
use tern_gui::{Options, TernApp};
use tern_node::profile::KdfParams;
use tern_testkit::net::loopback_settings;
use tern_testkit::profile::{PASSWORD, create, introduce};
use tern_testkit::wait::TIMEOUT;

pub type App = Harness<'static, TernApp>;

/// An app over profiles in `root`, its node on loopback only (mDNS would multicast beyond this machine).
pub fn app(root: &Path) -> App {
    app_with(Harness::builder(), root)
}

/// [`app`] drawn by `harness` (one that renders with wgpu, say).
pub fn app_with(harness: egui_kittest::HarnessBuilder<TernApp>, root: &Path) -> App {
    let options = Options {
        root: root.to_path_buf(),
        kdf: KdfParams::INSECURE_FOR_TESTS,
        network_override: Some(loopback_settings()),
    };
    harness
        .with_size(egui::vec2(1100.0, 760.0))
        .build_eframe(move |cc| TernApp::new(&cc.egui_ctx, options.clone()).unwrap())
}

/// Whether any node's label or text (a label's text is its value) contains `text`.
pub fn has_label(h: &App, text: &str) -> bool {
    h.query_all_by(|n| {
        n.label().is_some_and(|l| l.contains(text)) || n.value().is_some_and(|v| v.contains(text))
    })
    .next()
    .is_some()
}

pub fn is_field(role: Role) -> bool {
    matches!(
        role,
        Role::TextInput | Role::PasswordInput | Role::MultilineTextInput
    )
}

/// Focuses the text field labelled `field` and types `text` into it.
pub fn type_into(h: &mut App, field: &str, text: &str) {
    h.get_by(|n| is_field(n.role()) && n.label().as_deref() == Some(field))
        .focus();
    h.step();
    h.get_by(|n| is_field(n.role()) && n.label().as_deref() == Some(field))
        .type_text(text);
    h.step();
}

/// Clicks the button labelled `label`, then draws what the click changed. The one frame drawn after
/// asking to scroll it into view is enough for a button in view already; one that a scroll area must
/// bring into view first needs [`scroll_into_view`].
/// Puts the keyboard focus in the open conversation's composer and types `text` into it.
pub fn type_in_composer(h: &mut App, text: &str) {
    h.get_by_role(Role::MultilineTextInput).focus();
    h.step();
    h.get_by_role(Role::MultilineTextInput).type_text(text);
    h.step();
}

pub fn click(h: &mut App, label: &str) {
    click_role(h, Role::Button, label);
}

/// Shows the section `name` of Settings (an entry of its tab list).
pub fn open_section(h: &mut App, name: &str) {
    click_role(h, Role::Tab, name);
}

/// Clicks the node with `role` and `label` (see [`click`]), then draws what the click changed.
pub fn click_role(h: &mut App, role: Role, label: &str) {
    h.step();
    h.get_by_role_and_label(role, label).scroll_to_me();
    h.step();
    h.get_by_role_and_label(role, label).click();
    h.step();
    h.step();
}

/// At most this many frames are drawn while a node scrolls into view.
const MAX_SCROLL_FRAMES: usize = 8;

/// Asks for the node with `role` and `label` to be scrolled into view and draws frames until it holds
/// still. A scroll area takes the request at its end, after its content was laid out: the new offset
/// is drawn a frame later, and with the animation two frames later. A pointer click sent before
/// then lands where the node was (below the window): what took no clicks in an earlier dialog that
/// scrolled. Three frames at least, then until the node's rect is the same twice.
pub fn scroll_into_view(h: &mut App, role: Role, label: &str) {
    h.get_by_role_and_label(role, label).scroll_to_me();
    let mut rects = Vec::new();
    for _ in 0..MAX_SCROLL_FRAMES {
        h.step();
        rects.push(h.get_by_role_and_label(role, label).rect());
        if rects.len() >= 3 && rects[rects.len() - 1] == rects[rects.len() - 2] {
            return;
        }
    }
}

/// Stops the app's node.
pub fn shutdown(h: &mut App) {
    let app = h.state_mut();
    let node = app.model.node.take();
    app.backend.shutdown(node);
}

/// Draws frames until `done` holds, waiting for the node's updates in between.
pub fn settle(h: &mut App, what: &str, done: impl Fn(&App) -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        h.step();
        if done(h) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let app = h.state_mut();
        app.backend.wait(&mut app.model, Duration::from_millis(200));
    }
}

/// A profile "Me" with the contacts `names` (made on disk), unlocked in the app. The directories live
/// as long as the returned guards.
pub fn unlocked_with(names: &[&str]) -> (App, Vec<tempfile::TempDir>) {
    unlocked_with_mail(names, &[])
}

/// [`unlocked_with`], where the first contact already wrote `mail` (unread when the app opens).
pub fn unlocked_with_mail(names: &[&str], mail: &[&str]) -> (App, Vec<tempfile::TempDir>) {
    let root = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    {
        let mut me = create(&root.path().join("Me"), "Me");
        for (i, name) in names.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let mut peer = create(dir.path(), name);
            if i == 0 && !mail.is_empty() {
                introduce(&mut [&mut me, &mut peer]);
                for text in mail {
                    let (_, entry) = peer.send_text(&me.key(), text).unwrap();
                    me.receive(&entry.envelope).unwrap();
                }
            } else {
                me.add_contact(&peer.card().invite_link(), None).unwrap();
            }
            dirs.push(dir);
        }
    }
    let mut h = app(root.path());
    h.step();
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Unlock");
    settle(&mut h, "the main window", |h| {
        h.state().model.screen == Screen::Main
    });
    dirs.push(root);
    (h, dirs)
}

/// The state of the contact named `name`, if there is one.
pub fn state_of(h: &App, name: &str) -> Option<tern_gui::model::ContactState> {
    h.state()
        .model
        .contacts
        .iter()
        .find(|c| c.name() == name)
        .map(|c| c.record.state)
}

/// Every picture drawn in `shapes` with a texture named `name` (emoji are named "emoji 👋"), by the
/// rect it covers.
pub fn pictures_drawn(
    ctx: &egui::Context,
    shapes: &[egui::epaint::ClippedShape],
    name: &str,
) -> Vec<egui::Rect> {
    fn walk(shape: &egui::Shape, out: &mut Vec<(egui::TextureId, egui::Rect)>) {
        match shape {
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| walk(s, out)),
            egui::Shape::Mesh(mesh) => out.push((mesh.texture_id, mesh.calc_bounds())),
            _ => {}
        }
    }
    let mut meshes = Vec::new();
    shapes.iter().for_each(|s| walk(&s.shape, &mut meshes));
    let textures = ctx.tex_manager();
    let textures = textures.read();
    meshes
        .into_iter()
        .filter(|(id, _)| textures.meta(*id).is_some_and(|m| m.name == name))
        .map(|(_, rect)| rect)
        .collect()
}
