//! What the app tests share: an app over a loopback-only node, and reading and driving it through the
//! accessibility tree. Each test binary uses part of it.
#![allow(dead_code)]

use std::path::Path;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use tern_gui::{Options, TernApp};
use tern_node::profile::KdfParams;
use tern_testkit::net::loopback_settings;

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

/// Clicks the button labelled `label`, scrolled into view first (a dialog longer than the window scrolls),
/// then draws what the click changed.
pub fn click(h: &mut App, label: &str) {
    h.step();
    h.get_by_role_and_label(Role::Button, label).scroll_to_me();
    h.step();
    h.get_by_role_and_label(Role::Button, label).click();
    h.step();
    h.step();
}

/// Stops the app's node.
pub fn shutdown(h: &mut App) {
    let app = h.state_mut();
    let node = app.model.node.take();
    app.backend.shutdown(node);
}
