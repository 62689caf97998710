//! The message list of the open conversation. Only the rows in view are laid out: every row has a
//! height (estimated from its text until it is first drawn, then measured), and the scroll area is
//! told the total, so a conversation of any length costs the same per frame.

use egui::{Align, Layout, RichText, UiBuilder};
use tern_protocol::{IdentityKey, MessageId};

use crate::action::Action;
use crate::bubble::{self, BUBBLE_MARGIN, bubble, system_line};
use crate::file_card::Thumbnails;
use crate::model::{MessageRow, OpenConversation};
use crate::theme;
use crate::timefmt;

/// Load the next older page when the view is this close to the top.
const LOAD_OLDER_MARGIN: f32 = 300.0;
const SEPARATOR_HEIGHT: f32 = 28.0;
const ROW_GAP: f32 = 6.0;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Row {
    /// A date separator before message `usize`.
    Day(usize),
    Message(usize),
}

/// The layout cache of the open conversation's list.
#[derive(Debug, Default)]
pub struct ChatView {
    rows: Vec<Row>,
    heights: Vec<f32>,
    /// The rows' tops, kept up to date as measured heights replace estimates.
    tops: RowTops,
    /// What the cache was built for: message count, first and last id, width.
    built_for: Option<(usize, Option<MessageId>, Option<MessageId>, u32)>,
    /// The first message id before an older page was put on top, and the scroll offset then.
    anchor: Option<(MessageId, f32)>,
    /// Jump to the newest message on the next frame.
    follow_next: bool,
    /// A message to bring into view (from search), loading older pages until it is there.
    scroll_to: Option<MessageId>,
    /// Rows laid out in the last frame (for the benchmark and tests).
    pub last_laid_out: usize,
    /// The previews of the conversation's pictures, decoded once each.
    pub thumbnails: Thumbnails,
}

/// The local day number of a time (days since the epoch in the local offset of now).
fn day_number(ms: u64, offset_s: i64) -> i64 {
    (i64::try_from(ms / 1000).unwrap_or(i64::MAX) + offset_s).div_euclid(86_400)
}

fn local_offset_s() -> i64 {
    i64::from(chrono::Local::now().offset().local_minus_utc())
}

impl ChatView {
    /// A view of a conversation that opens at its newest message.
    pub fn at_newest() -> Self {
        Self {
            follow_next: true,
            ..Self::default()
        }
    }

    /// A view of a conversation that opens with `id` in view.
    pub fn at_message(id: MessageId) -> Self {
        Self {
            scroll_to: Some(id),
            ..Self::default()
        }
    }

    /// Scroll to the newest message on the next frame (after sending).
    pub fn follow(&mut self) {
        self.follow_next = true;
    }

    /// Bring `id` into view (or, with `None`, stop looking for a message).
    pub fn scroll_to(&mut self, id: Option<MessageId>) {
        self.scroll_to = id;
    }

    /// Rows in the current layout (messages plus date separators).
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// Lays the rows out again: each message's height is estimated from its text (`row_height` a line,
    /// `char_width` a character) and its time line (`meta_height`, the "…" button's height).
    fn rebuild(
        &mut self,
        messages: &[MessageRow],
        width: f32,
        (row_height, char_width, meta_height): (f32, f32, f32),
    ) {
        let offset = local_offset_s();
        self.rows.clear();
        self.heights.clear();
        let mut last_day = None;
        let wrap = (bubble::max_width(width) - 2.0 * BUBBLE_MARGIN).max(40.0);
        let per_line = (wrap / char_width).max(8.0) as usize;
        for (i, m) in messages.iter().enumerate() {
            let day = day_number(m.sort_ms(), offset);
            if last_day != Some(day) {
                last_day = Some(day);
                self.rows.push(Row::Day(i));
                self.heights.push(SEPARATOR_HEIGHT);
            }
            let lines: usize = m
                .text
                .split('\n')
                .map(|l| l.chars().count().div_ceil(per_line).max(1))
                .sum::<usize>()
                // A group's incoming message has its sender's name on top.
                + usize::from(m.conversation.is_group() && !m.outgoing() && !m.system);
            self.rows.push(Row::Message(i));
            self.heights
                .push(lines as f32 * row_height + meta_height + 2.0 * BUBBLE_MARGIN + ROW_GAP);
        }
        self.tops = RowTops::build(&self.heights);
    }

    fn top(&self, row: usize) -> f32 {
        self.tops.top(row) as f32
    }

    /// Draws the list; returns what it asks the app to do. `sender` names the sender of a group's
    /// incoming message.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        open: &OpenConversation,
        sender: &dyn Fn(&IdentityKey) -> String,
        quote: &dyn Fn(MessageId) -> String,
    ) -> Option<Action> {
        let width = ui.available_width();
        let key = (
            open.messages.len(),
            open.messages.first().map(|m| m.id),
            open.messages.last().map(|m| m.id),
            width as u32,
        );
        if self.built_for != Some(key) {
            let previous_first = self.built_for.and_then(|(_, first, _, _)| first);
            let row_height = ui.text_style_height(&egui::TextStyle::Body);
            let char_width = row_height * 0.5;
            let meta_height = ui.spacing().interact_size.y.max(row_height);
            self.rebuild(&open.messages, width, (row_height, char_width, meta_height));
            // An older page went on top: keep the same message under the reader's eyes.
            if let Some((first, offset)) = self.anchor.take()
                && previous_first == Some(first)
                && let Some(at) = open.messages.iter().position(|m| m.id == first)
            {
                let row = self
                    .rows
                    .iter()
                    .position(|r| matches!(r, Row::Day(i) | Row::Message(i) if *i == at))
                    .unwrap_or(0);
                self.anchor = Some((first, offset + self.top(row)));
            } else {
                self.anchor = None;
            }
            self.built_for = Some(key);
        }
        let total = self.tops.total() as f32;

        let mut area = egui::ScrollArea::vertical()
            .id_salt(("chat", open.conversation.to_bytes()))
            .auto_shrink([false, false])
            .stick_to_bottom(true);
        if let Some((_, offset)) = self.anchor.take() {
            area = area.vertical_scroll_offset(offset);
        }
        let mut action = None;
        let load_older = |before| Action::LoadOlder {
            conversation: open.conversation,
            before,
        };
        if let Some(target) = self.scroll_to {
            let row = open
                .messages
                .iter()
                .position(|m| m.id == target)
                .and_then(|at| self.rows.iter().position(|r| *r == Row::Message(at)));
            match (row, open.older) {
                (Some(row), _) => {
                    self.scroll_to = None;
                    // Not stuck to the bottom this frame, or the area would put the offset back there
                    // (a conversation already open and at its newest message: a reply's quote, a search
                    // result in it).
                    area = area
                        .vertical_scroll_offset((self.top(row) - 80.0).max(0.0))
                        .stick_to_bottom(false);
                }
                // Not loaded yet: bring in older pages until it is.
                (None, Some(cursor)) if !open.loading => action = Some(load_older(cursor)),
                (None, None) if !open.loading => self.scroll_to = None,
                (None, _) => {}
            }
        } else if self.follow_next && !open.messages.is_empty() {
            self.follow_next = false;
            area = area.vertical_scroll_offset(total);
        }

        let today = timefmt::day_of(tern_node::api::now_ms());
        let mut measured = Vec::new();
        let output = area.show_viewport(ui, |ui, viewport| {
            ui.set_height(total);
            let full = ui.max_rect();
            let first = self.tops.row_at(f64::from(viewport.min.y));
            let mut laid_out = 0;
            let mut top = self.top(first);
            for row in first..self.rows.len() {
                if top > viewport.max.y {
                    break;
                }
                laid_out += 1;
                let rect = egui::Rect::from_min_size(
                    egui::pos2(full.min.x, full.min.y + top),
                    egui::vec2(full.width(), self.heights[row]),
                );
                // Named by its message, so its widgets (and an open message menu) keep their ids
                // while the list scrolls.
                let salt = match self.rows[row] {
                    Row::Day(i) => (0u8, open.messages[i].id),
                    Row::Message(i) => (1u8, open.messages[i].id),
                };
                let mut child = ui.new_child(
                    UiBuilder::new()
                        .id_salt(salt)
                        .max_rect(rect)
                        .layout(Layout::top_down(Align::Min)),
                );
                match self.rows[row] {
                    Row::Day(i) => {
                        let label = match (timefmt::day_of(open.messages[i].sort_ms()), today) {
                            (Some(day), Some(today)) => timefmt::day_label(day, today),
                            _ => String::new(),
                        };
                        child.vertical_centered(|ui| {
                            ui.add_space(theme::ITEM_SPACING.y);
                            ui.label(RichText::new(label).weak().small());
                        });
                    }
                    Row::Message(i) if open.messages[i].system => {
                        system_line(&mut child, &open.messages[i]);
                        let used = child.min_rect().height() + ROW_GAP;
                        if (used - self.heights[row]).abs() > 0.5 {
                            measured.push((row, used));
                        }
                    }
                    Row::Message(i) => {
                        let m = &open.messages[i];
                        let from = m
                            .sender
                            .filter(|_| open.conversation.is_group())
                            .map(|k| sender(&k));
                        let quoted = m.reply_to.map(quote);
                        if let Some(asked) = bubble(
                            &mut child,
                            m,
                            from.as_deref(),
                            quoted.as_deref(),
                            full.width(),
                            &mut self.thumbnails,
                        ) {
                            action = Some(asked);
                        }
                        let used = child.min_rect().height() + ROW_GAP;
                        if (used - self.heights[row]).abs() > 0.5 {
                            measured.push((row, used));
                        }
                    }
                }
                top += self.heights[row];
            }
            self.last_laid_out = laid_out;
        });
        if !measured.is_empty() {
            // Estimates were replaced by real heights: draw again with the rows where they belong.
            ui.ctx().request_repaint();
        }
        for (row, height) in measured {
            self.tops.add(row, f64::from(height - self.heights[row]));
            self.heights[row] = height;
        }
        let offset = output.state.offset.y;
        if action.is_none()
            && !self.follow_next
            && offset < LOAD_OLDER_MARGIN
            && !open.loading
            && let Some(cursor) = open.older
        {
            self.anchor = open.messages.first().map(|m| (m.id, offset));
            action = Some(load_older(cursor));
        }
        action
    }
}

/// Prefix sums of the rows' heights as a Fenwick tree: a row's top, the total height, the row at a given
/// height, and a changed height each cost O(log n), so a measured row does not make every frame walk the
/// whole conversation.
#[derive(Debug, Default)]
struct RowTops {
    /// 1-based; `tree[i]` sums the heights of rows `i - lowbit(i) .. i`.
    tree: Vec<f64>,
}

fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

impl RowTops {
    fn build(heights: &[f32]) -> Self {
        let n = heights.len();
        let mut tree = vec![0.0; n + 1];
        for i in 1..=n {
            tree[i] += f64::from(heights[i - 1]);
            let parent = i + lowbit(i);
            if parent <= n {
                tree[parent] += tree[i];
            }
        }
        Self { tree }
    }

    fn len(&self) -> usize {
        self.tree.len().saturating_sub(1)
    }

    /// Adds `delta` to the height of `row`.
    fn add(&mut self, row: usize, delta: f64) {
        let mut i = row + 1;
        while i < self.tree.len() {
            self.tree[i] += delta;
            i += lowbit(i);
        }
    }

    /// The summed height of the rows before `row`.
    fn top(&self, row: usize) -> f64 {
        let mut i = row.min(self.len());
        let mut sum = 0.0;
        while i > 0 {
            sum += self.tree[i];
            i -= lowbit(i);
        }
        sum
    }

    fn total(&self) -> f64 {
        self.top(self.len())
    }

    /// The row that spans height `y` (the last row if `y` is past the end, 0 if there are none).
    fn row_at(&self, y: f64) -> usize {
        let n = self.len();
        let mut pos = 0;
        let mut rest = y;
        let mut step = n.checked_ilog2().map_or(0, |b| 1 << b);
        while step > 0 {
            if pos + step <= n && self.tree[pos + step] <= rest {
                pos += step;
                rest -= self.tree[pos];
            }
            step >>= 1;
        }
        pos.min(n.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::RowTops;

    #[test]
    fn row_tops_agree_with_plain_prefix_sums_after_updates() {
        let mut heights: Vec<f32> = (0..1000).map(|i| 10.0 + (i * 7 % 13) as f32).collect();
        let mut tops = RowTops::build(&heights);
        for (row, new) in [(0, 50.0), (999, 3.0), (512, 100.0), (511, 1.0), (37, 37.0)] {
            tops.add(row, f64::from(new - heights[row]));
            heights[row] = new;
        }
        let mut y = 0.0f64;
        for (row, h) in heights.iter().enumerate() {
            assert!((tops.top(row) - y).abs() < 1e-6, "top of {row}");
            assert_eq!(tops.row_at(y), row, "row at the top of {row}");
            assert_eq!(
                tops.row_at(y + f64::from(*h) / 2.0),
                row,
                "row inside {row}"
            );
            y += f64::from(*h);
        }
        assert!((tops.total() - y).abs() < 1e-6);
        assert_eq!(tops.row_at(y + 500.0), 999, "past the end: the last row");
        assert_eq!(RowTops::build(&[]).row_at(10.0), 0);
    }
}
