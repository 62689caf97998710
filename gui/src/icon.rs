//! The application icon. `gui/assets/org.tern.Tern.svg` is the one drawing: the desktop entry and the
//! Debian package install it, and the window icon here is that SVG's rounded square and polygon filled at
//! a fixed size (4×4 samples a pixel), so the two cannot drift apart.

use egui::IconData;

use crate::widgets::ACCENT;

/// The icon's SVG, as installed to `/usr/share/icons/hicolor/scalable/apps/`.
pub const SVG: &str = include_str!("../assets/org.tern.Tern.svg");

/// The window icon's side, in pixels.
pub const SIZE: u32 = 256;

/// Samples per pixel along each axis.
const SAMPLES: u32 = 4;

/// The SVG's coordinate space (`viewBox="0 0 100 100"`).
const VIEW: f32 = 100.0;

/// The window icon: [`SVG`] drawn at [`SIZE`]×[`SIZE`] RGBA.
pub fn window_icon() -> IconData {
    draw(SIZE)
}

/// [`SVG`] drawn at `size`×`size` RGBA (unmultiplied); the tray's icon is drawn smaller.
pub fn draw(size: u32) -> IconData {
    let shape = Shape::from_svg(SVG);
    let scale = VIEW / size as f32;
    let mut rgba = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let (mut inside, mut bird) = (0u32, 0u32);
            for sy in 0..SAMPLES {
                for sx in 0..SAMPLES {
                    let px = (x as f32 + (sx as f32 + 0.5) / SAMPLES as f32) * scale;
                    let py = (y as f32 + (sy as f32 + 0.5) / SAMPLES as f32) * scale;
                    if shape.in_square(px, py) {
                        inside += 1;
                        if shape.in_bird(px, py) {
                            bird += 1;
                        }
                    }
                }
            }
            let total = SAMPLES * SAMPLES;
            // Unmultiplied colour: the bird's share of the covered samples, over the accent.
            let mix = |accent: u8| -> u8 {
                if inside == 0 {
                    return 0;
                }
                let white = u32::from(u8::MAX) * bird;
                let blue = u32::from(accent) * (inside - bird);
                u8::try_from((white + blue) / inside).unwrap_or(u8::MAX)
            };
            rgba.push(mix(ACCENT.r()));
            rgba.push(mix(ACCENT.g()));
            rgba.push(mix(ACCENT.b()));
            rgba.push(u8::try_from(u32::from(u8::MAX) * inside / total).unwrap_or(u8::MAX));
        }
    }
    IconData {
        rgba,
        width: size,
        height: size,
    }
}

/// What [`SVG`] draws: a square with rounded corners of radius `radius` over the whole view, and a
/// white polygon.
struct Shape {
    radius: f32,
    bird: Vec<(f32, f32)>,
}

impl Shape {
    /// Reads the radius (`rx="…"`) and the polygon (`points="…"`) from the SVG; a value that does not
    /// parse leaves a square without corners or without the bird, never a panic.
    fn from_svg(svg: &str) -> Self {
        let radius = attribute(svg, "rx")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let bird = attribute(svg, "points")
            .map(|points| {
                points
                    .split_whitespace()
                    .filter_map(|pair| {
                        let (x, y) = pair.split_once(',')?;
                        Some((x.parse().ok()?, y.parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { radius, bird }
    }

    fn in_square(&self, x: f32, y: f32) -> bool {
        if !(0.0..VIEW).contains(&x) || !(0.0..VIEW).contains(&y) {
            return false;
        }
        let r = self.radius;
        // Distance into a corner's box, from the corner circle's centre.
        let dx = (r - x).max(x - (VIEW - r)).max(0.0);
        let dy = (r - y).max(y - (VIEW - r)).max(0.0);
        dx * dx + dy * dy <= r * r
    }

    /// Even-odd rule, as the SVG's default `fill-rule` for a simple polygon.
    fn in_bird(&self, x: f32, y: f32) -> bool {
        let mut inside = false;
        let n = self.bird.len();
        for i in 0..n {
            let (xi, yi) = self.bird[i];
            let (xj, yj) = self.bird[(i + n - 1) % n];
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
        }
        inside
    }
}

/// The value of the first `name="…"` in `svg`.
fn attribute<'a>(svg: &'a str, name: &str) -> Option<&'a str> {
    let start = svg.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = svg[start..].find('"')?;
    Some(&svg[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(icon: &IconData, x: u32, y: u32) -> [u8; 4] {
        let at = ((y * icon.width + x) * 4) as usize;
        [
            icon.rgba[at],
            icon.rgba[at + 1],
            icon.rgba[at + 2],
            icon.rgba[at + 3],
        ]
    }

    #[test]
    fn the_window_icon_is_the_svgs_drawing() {
        let icon = window_icon();
        assert_eq!((icon.width, icon.height), (SIZE, SIZE));
        assert_eq!(icon.rgba.len(), (SIZE * SIZE * 4) as usize);
        // The rounded corner is transparent, the square's edge the accent, the bird's body white.
        assert_eq!(pixel(&icon, 0, 0)[3], 0);
        assert_eq!(
            pixel(&icon, SIZE / 2, 4),
            [ACCENT.r(), ACCENT.g(), ACCENT.b(), 255]
        );
        let body = pixel(&icon, SIZE / 2, SIZE * 55 / 100);
        assert_eq!(body, [255, 255, 255, 255]);
        // Between the two tail tips, below the notch: background again.
        assert_eq!(
            pixel(&icon, SIZE / 2, SIZE * 85 / 100),
            [ACCENT.r(), ACCENT.g(), ACCENT.b(), 255]
        );
    }

    #[test]
    fn the_svg_names_the_apps_accent() {
        let hex = format!("#{:02x}{:02x}{:02x}", ACCENT.r(), ACCENT.g(), ACCENT.b());
        assert!(SVG.contains(&format!("fill=\"{hex}\"")), "{hex}");
        let shape = Shape::from_svg(SVG);
        assert_eq!(shape.radius, 22.0);
        assert_eq!(shape.bird.len(), 10);
    }

    #[test]
    fn an_svg_that_does_not_parse_draws_a_plain_square() {
        let shape = Shape::from_svg("<svg/>");
        assert_eq!(shape.radius, 0.0);
        assert!(shape.bird.is_empty());
        assert!(shape.in_square(0.1, 0.1));
        assert!(!shape.in_bird(50.0, 55.0));
    }
}
