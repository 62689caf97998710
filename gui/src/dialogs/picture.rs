//! "Picture": a received or sent picture at full size, scaled down to fit (`crate::picture` decodes it).

use std::sync::Arc;

use crate::action::Action;
use crate::model::Model;

/// The dialog's width: the picture is scaled down to it (and to the window's height).
pub const PICTURE_WIDTH: f32 = 860.0;

/// The texture of the picture on show (made once per picture).
#[derive(Default)]
pub struct Form {
    texture: Option<(usize, egui::TextureHandle)>,
}

/// The picture, scaled down to fit; its alternative text names it.
pub fn show(ui: &mut egui::Ui, model: &Model, form: &mut Form) -> Vec<Action> {
    let Some(picture) = &model.picture else {
        return Vec::new();
    };
    let key = Arc::as_ptr(&picture.image) as usize;
    if form.texture.as_ref().is_none_or(|(k, _)| *k != key) {
        let texture = ui.ctx().load_texture(
            "picture",
            (*picture.image).clone(),
            egui::TextureOptions::LINEAR,
        );
        form.texture = Some((key, texture));
    }
    if let Some((_, texture)) = &form.texture {
        let max_height = (ui.ctx().content_rect().height() - 160.0).max(120.0);
        ui.vertical_centered(|ui| {
            ui.add(
                egui::Image::from_texture(texture)
                    .max_size(egui::vec2(PICTURE_WIDTH, max_height))
                    .alt_text(format!("The picture {}", picture.name)),
            );
            ui.label(&picture.name);
        });
    }
    Vec::new()
}
