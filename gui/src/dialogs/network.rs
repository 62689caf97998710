//! "Network": the mode, peers, NAT, relay, contacts (direct or relayed), mailboxes, outbox, published and
//! listen addresses, asked from the node
//! every [`STATUS_REFRESH`] while the dialog is open.

use std::time::{Duration, Instant};

use crate::action::Action;
use crate::model::{Model, NatStatus};
use crate::widgets::short_peer;

/// The network panel asks the node for its status this often while it is open.
pub const STATUS_REFRESH: Duration = Duration::from_secs(2);

/// The dialog's state.
#[derive(Default)]
pub struct Form {
    /// When the status was last asked for; `None` asks at once.
    pub status_asked: Option<Instant>,
}

/// Draws the dialog.
pub fn show(ui: &mut egui::Ui, m: &Model, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    if m.node.is_some()
        && form
            .status_asked
            .is_none_or(|t| t.elapsed() >= STATUS_REFRESH)
    {
        form.status_asked = Some(Instant::now());
        actions.push(Action::RefreshStatus);
    }
    ui.ctx().request_repaint_after(STATUS_REFRESH);
    egui::Grid::new("network")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            ui.label("Mode");
            ui.label(if m.settings.lan_only {
                "LAN only"
            } else {
                "Internet and LAN"
            });
            ui.end_row();
            ui.label("Connected peers");
            ui.label(m.connected.to_string());
            ui.end_row();
            if let Some(s) = &m.status {
                ui.label("LAN peers (mDNS)");
                ui.label(s.lan_peers.to_string());
                ui.end_row();
                ui.label("NAT");
                ui.label(match &s.nat {
                    NatStatus::Public(addr) => format!("reachable at {addr}"),
                    NatStatus::Private => "behind NAT (relays and hole punching)".to_owned(),
                    NatStatus::Unknown => "not known yet".to_owned(),
                });
                ui.end_row();
                ui.label("Relay");
                ui.label(if s.relayed {
                    "listening through relays"
                } else {
                    "not used"
                });
                ui.end_row();
                ui.label("Contacts online");
                ui.vertical(|ui| {
                    if s.contacts.is_empty() {
                        ui.label("none");
                    }
                    for c in &s.contacts {
                        ui.label(format!(
                            "{}: {}",
                            c.name,
                            match c.reach {
                                tern_node::api::Reach::Direct => "direct",
                                tern_node::api::Reach::Relayed => "through a relay",
                            }
                        ));
                    }
                });
                ui.end_row();
                ui.label("Mailboxes");
                let mut boxes: Vec<String> = s.mailboxes.iter().map(short_peer).collect();
                boxes.extend(
                    s.lan_mailboxes
                        .iter()
                        .map(|p| format!("{} (LAN)", short_peer(p))),
                );
                ui.label(if boxes.is_empty() {
                    "none".to_owned()
                } else {
                    boxes.join(", ")
                });
                ui.end_row();
                ui.label("Outbox");
                ui.label(format!("{} waiting", s.outbox_len));
                ui.end_row();
                ui.label("Published addresses");
                ui.vertical(|ui| {
                    if s.published_addrs.is_empty() {
                        ui.label("none");
                    }
                    for a in &s.published_addrs {
                        ui.monospace(a.to_string());
                    }
                });
                ui.end_row();
                ui.label("Listening on");
                ui.vertical(|ui| {
                    for a in &s.listen_addrs {
                        ui.monospace(a.to_string());
                    }
                });
                ui.end_row();
            }
        });
    actions
}
