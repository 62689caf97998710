//! "Message info" (from a message's menu): when it was sent and, for an incoming message, when it
//! arrived here; when it was delivered and read, as this computer learned it; its status, and in a group
//! each member's status. A time the node does not know (a message stored before Tern kept them, a group
//! member's receipt) is not shown, and the dialog says why.

use egui::RichText;
use tern_protocol::MessageId;

use tern_node::api::MessageTimes;

use crate::action::Action;
use crate::model::{ConversationKey, MessageRow, MessageStatus, Model};
use crate::theme;
use crate::timefmt;

/// What the dialog says when a sent message's delivery time is not known.
pub const NO_RECEIPT_TIMES: &str = "Delivered and read times are shown once this computer learns them (not for messages from before Tern recorded them).";

/// The message the dialog is about.
#[derive(Default)]
pub struct Form {
    pub message: Option<(ConversationKey, MessageId)>,
}

/// A status in words.
pub fn status_word(status: MessageStatus, outgoing: bool) -> &'static str {
    match status {
        MessageStatus::Sending => "Sending",
        MessageStatus::Sent => "Sent, not delivered yet",
        MessageStatus::Delivered => "Delivered",
        MessageStatus::Read if outgoing => "Read",
        MessageStatus::Read => "Read by you",
        MessageStatus::Failed => "Failed to send",
        MessageStatus::Received => "Not read yet",
        _ => "Unknown",
    }
}

/// The lines for the times the node knows: "Delivered: …" and "Read: …" for a sent message, "Read: …"
/// (by you) for a received one.
pub fn time_lines(outgoing: bool, times: &MessageTimes) -> Vec<String> {
    let mut lines = Vec::new();
    if let (true, Some(at)) = (outgoing, times.delivered_at_ms) {
        lines.push(format!("Delivered: {}", timefmt::full(at)));
    }
    if let Some(at) = times.read_at_ms {
        let who = if outgoing { "Read" } else { "Read by you" };
        lines.push(format!("{who}: {}", timefmt::full(at)));
    }
    lines
}

/// The dialog's lines for message `m` (`name` names a member), in order.
pub fn lines(m: &MessageRow, name: &dyn Fn(&tern_protocol::IdentityKey) -> String) -> Vec<String> {
    let mut lines = Vec::new();
    match m.sender {
        None => lines.push("From: you".to_owned()),
        Some(sender) => lines.push(format!("From: {}", name(&sender))),
    }
    if m.outgoing() {
        lines.push(format!("Sent: {}", timefmt::full(m.sent_at_ms)));
    } else {
        lines.push(format!(
            "Sent: {} (the sender's clock)",
            timefmt::full(m.sent_at_ms)
        ));
        lines.push(format!("Received: {}", timefmt::full(m.received_at_ms)));
    }
    lines.push(format!("Status: {}", status_word(m.status, m.outgoing())));
    if !m.recipients.is_empty() {
        let got = |s: &[MessageStatus]| {
            m.recipients
                .iter()
                .filter(|r| s.contains(&r.status))
                .count()
        };
        lines.push(format!(
            "Delivered to {} of {}, read by {}",
            got(&[MessageStatus::Delivered, MessageStatus::Read]),
            m.recipients.len(),
            got(&[MessageStatus::Read]),
        ));
    }
    for r in &m.recipients {
        let word = status_word(r.status, true);
        lines.push(match r.at_ms {
            0 => format!("{}: {word}", name(&r.member)),
            at => format!("{}: {word}, {}", name(&r.member), timefmt::full(at)),
        });
    }
    lines
}

/// Draws the dialog.
pub fn show(ui: &mut egui::Ui, model: &Model, form: &Form) -> Vec<Action> {
    let message = form.message.and_then(|(conversation, id)| {
        model
            .open
            .as_ref()
            .filter(|o| o.conversation == conversation)
            .and_then(|o| o.messages.iter().find(|m| m.id == id))
    });
    let Some(m) = message else {
        ui.label("This message is no longer here.");
        return Vec::new();
    };
    let lines = lines(m, &|k| model.sender_label(k));
    // The members' lines come after a heading of their own.
    let (about, members) = lines.split_at(lines.len() - m.recipients.len());
    for line in about {
        ui.label(line);
    }
    let times = model
        .open
        .as_ref()
        .and_then(|o| o.info_times)
        .filter(|(id, _)| *id == m.id)
        .map(|(_, times)| times)
        .unwrap_or_default();
    for line in time_lines(m.outgoing(), &times) {
        ui.label(line);
    }
    if !members.is_empty() {
        ui.add_space(theme::ITEM_SPACING.y);
        ui.label(RichText::new("Members").strong());
        for line in members {
            ui.label(line);
        }
    }
    let receipted = matches!(m.status, MessageStatus::Delivered | MessageStatus::Read);
    if m.outgoing() && receipted && times.delivered_at_ms.is_none() {
        ui.add_space(theme::ITEM_SPACING.y);
        ui.label(RichText::new(NO_RECEIPT_TIMES).weak());
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use tern_node::api::RecipientStatus;

    use super::*;
    use crate::model::test_rows::{key, message};

    #[test]
    fn the_known_delivery_and_read_times_are_listed_and_the_unknown_ones_left_out() {
        let t = 1_800_000_000_000;
        let both = MessageTimes {
            delivered_at_ms: Some(t),
            read_at_ms: Some(t + 60_000),
        };
        assert_eq!(
            time_lines(true, &both),
            [
                format!("Delivered: {}", timefmt::full(t)),
                format!("Read: {}", timefmt::full(t + 60_000)),
            ]
        );
        // A received message: only when it was read here.
        assert_eq!(
            time_lines(false, &both),
            [format!("Read by you: {}", timefmt::full(t + 60_000))]
        );
        assert!(time_lines(true, &MessageTimes::default()).is_empty());
    }

    #[test]
    fn a_group_messages_info_lists_each_members_status_and_an_incoming_one_both_times() {
        let group = tern_node::api::ConversationId::Group([7; 32]);
        let (ana, bo) = (key(1), key(2));
        let mut mine = message(ana, 1, 1_800_000_000_000, true);
        mine.conversation = group;
        mine.status = MessageStatus::Delivered;
        mine.recipients = vec![
            RecipientStatus {
                member: ana,
                status: MessageStatus::Read,
                at_ms: 1_800_000_060_000,
            },
            RecipientStatus {
                member: bo,
                status: MessageStatus::Sent,
                at_ms: 0,
            },
        ];
        let name = |k: &tern_protocol::IdentityKey| if *k == ana { "Ana" } else { "Bo" }.to_owned();
        assert_eq!(
            lines(&mine, &name),
            [
                "From: you".to_owned(),
                format!("Sent: {}", timefmt::full(1_800_000_000_000)),
                "Status: Delivered".to_owned(),
                "Delivered to 1 of 2, read by 1".to_owned(),
                format!("Ana: Read, {}", timefmt::full(1_800_000_060_000)),
                "Bo: Sent, not delivered yet".to_owned(),
            ]
        );
        let mut theirs = message(bo, 2, 1_800_000_000_000, false);
        theirs.received_at_ms = 1_800_000_005_000;
        assert_eq!(
            lines(&theirs, &name),
            [
                "From: Bo".to_owned(),
                format!(
                    "Sent: {} (the sender's clock)",
                    timefmt::full(1_800_000_000_000)
                ),
                format!("Received: {}", timefmt::full(1_800_000_005_000)),
                "Status: Not read yet".to_owned(),
            ]
        );
    }
}
