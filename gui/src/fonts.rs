//! Every script displays: egui's own fonts (Latin, some symbols, monochrome emoji) come first, and the
//! system's fonts follow as fallbacks, one face per script that they do not cover (CJK, Arabic, Hebrew,
//! the Indic scripts, Thai, emoji...). Installed fonts are found with `fontdb` (it reads fontconfig's
//! configuration, no C library) and only memory-mapped while their character maps are checked; only the
//! few faces chosen are read into memory, at most [`MAX_FALLBACK_FONTS`] of them and
//! [`MAX_FALLBACK_BYTES`] in all (a CJK collection alone is about 19 MB). They are read once per
//! process and kept for its life (egui then borrows them instead of copying them into each of its font
//! sets), on a thread of their own so that the window opens without waiting.

use std::sync::{Arc, OnceLock};

use egui::FontFamily;
use egui::epaint::text::{FontData, FontDefinitions};

/// At most this many system faces are added behind egui's fonts.
pub const MAX_FALLBACK_FONTS: usize = 24;
/// At most this many bytes of system fonts are read into memory.
pub const MAX_FALLBACK_BYTES: u64 = 96 * 1024 * 1024;
/// A single font file larger than this is never read (some "complete" collections are 100+ MB).
pub const MAX_FONT_FILE_BYTES: u64 = 40 * 1024 * 1024;

/// A script that people write, with characters a face must have to be its fallback, and words that
/// name faces made for it (preferred over faces that merely contain it).
struct Script {
    name: &'static str,
    samples: &'static [char],
    hints: &'static [&'static str],
}

/// The scripts checked, in the order their fallbacks are chosen (a face chosen early may cover later
/// ones: DejaVu Sans has Cyrillic, Greek, Hebrew and Arabic).
#[rustfmt::skip]
const SCRIPTS: &[Script] = &[
    Script { name: "Latin", samples: &['é', 'ß', 'ł', 'ő', 'ç', 'ñ'], hints: &[] },
    Script { name: "Cyrillic", samples: &['Ж', 'я', 'ї'], hints: &[] },
    Script { name: "Greek", samples: &['Ω', 'λ', 'ά'], hints: &[] },
    Script { name: "CJK", samples: &['世', '界', 'あ', 'ア', '한', '国'], hints: &["CJK"] },
    Script { name: "Arabic", samples: &['م', 'ر', 'ح', 'ب', 'ا', 'ی', '،'], hints: &["Arabic"] },
    Script { name: "Hebrew", samples: &['ש', 'ל', 'ו', 'ם'], hints: &["Hebrew"] },
    Script { name: "Devanagari", samples: &['न', 'म', 'स', '्', 'त', 'े'], hints: &["Devanagari"] },
    Script { name: "Bengali", samples: &['ব', 'া', 'ং', 'ল'], hints: &["Bengali"] },
    Script { name: "Gurmukhi", samples: &['ਪ', 'ੰ', 'ਜ'], hints: &["Gurmukhi"] },
    Script { name: "Gujarati", samples: &['ગ', 'ુ', 'જ'], hints: &["Gujarati"] },
    Script { name: "Tamil", samples: &['த', 'ம', 'ி', 'ழ', '்'], hints: &["Tamil"] },
    Script { name: "Telugu", samples: &['త', 'ె', 'ల'], hints: &["Telugu"] },
    Script { name: "Kannada", samples: &['ಕ', 'ನ', 'ಡ'], hints: &["Kannada"] },
    Script { name: "Malayalam", samples: &['മ', 'ല', 'യ'], hints: &["Malayalam"] },
    Script { name: "Sinhala", samples: &['ස', 'ි', 'හ'], hints: &["Sinhala"] },
    Script { name: "Thai", samples: &['ก', 'ข', 'ไ', 'ท', 'ย'], hints: &["Thai"] },
    Script { name: "Lao", samples: &['ລ', 'າ', 'ວ'], hints: &["Lao"] },
    Script { name: "Khmer", samples: &['ខ', 'ម', 'រ'], hints: &["Khmer"] },
    Script { name: "Myanmar", samples: &['မ', 'ြ', 'န'], hints: &["Myanmar"] },
    Script { name: "Georgian", samples: &['ქ', 'ა', 'რ'], hints: &["Georgian"] },
    Script { name: "Armenian", samples: &['Հ', 'ա', 'յ'], hints: &["Armenian"] },
    Script { name: "Ethiopic", samples: &['አ', 'ማ', 'ር'], hints: &["Ethiopic"] },
    Script { name: "Symbols", samples: &['⏱', '⚠', '✓', 'ⓘ'], hints: &["Symbols"] },
    Script { name: "Emoji", samples: &['👋', '😀', '📄', '🎉'], hints: &["Emoji", "Symbola"] },
];

/// What [`found`] chose: faces read into memory, and the scripts no installed face covers.
pub struct Fallbacks {
    /// `(name, data)` in the order they follow egui's fonts; the name is the family and fontdb's face id.
    pub faces: Vec<(String, Arc<FontData>)>,
    /// Scripts that neither egui's fonts nor a system font (within the bounds) cover.
    pub missing: Vec<&'static str>,
    /// Bytes read into memory.
    pub bytes: u64,
}

impl std::fmt::Debug for Fallbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.faces.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Fallbacks")
            .field("faces", &names)
            .field("missing", &self.missing)
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// egui's fonts followed by the system fallbacks, for `ctx.set_fonts`.
pub fn definitions(fallbacks: &Fallbacks) -> FontDefinitions {
    let mut defs = FontDefinitions::default();
    for (name, data) in &fallbacks.faces {
        defs.font_data.insert(name.clone(), Arc::clone(data));
        for family in [FontFamily::Proportional, FontFamily::Monospace] {
            defs.families.entry(family).or_default().push(name.clone());
        }
    }
    defs
}

/// Installs the system fallbacks into `ctx` (once, where the app sets up its context): at once if they
/// were found before in this process, else from a thread when they are (`ctx` redraws then).
pub fn install(ctx: &egui::Context) {
    if let Some(fallbacks) = FOUND.get() {
        ctx.set_fonts(definitions(fallbacks));
        return;
    }
    let ctx = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name("tern-fonts".to_owned())
        .spawn(move || {
            ctx.set_fonts(definitions(found()));
            ctx.request_repaint();
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the thread that finds fonts: {e}");
    }
}

/// Whether `ctx` has the system fallbacks (after [`install`]; tests wait for it).
pub fn installed(ctx: &egui::Context) -> bool {
    let Some(fallbacks) = FOUND.get() else {
        return false;
    };
    ctx.fonts(|f| {
        fallbacks
            .faces
            .iter()
            .all(|(name, _)| f.definitions().font_data.contains_key(name))
    })
}

static FOUND: OnceLock<Fallbacks> = OnceLock::new();

/// The fallbacks of this process: [`discover`]ed the first time.
pub fn found() -> &'static Fallbacks {
    FOUND.get_or_init(|| {
        let started = std::time::Instant::now();
        let fallbacks = discover();
        tracing::info!(
            faces = fallbacks.faces.len(),
            bytes = fallbacks.bytes,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "system fonts chosen as fallbacks"
        );
        if !fallbacks.missing.is_empty() {
            tracing::info!(missing = ?fallbacks.missing, "no installed font covers these scripts");
        }
        fallbacks
    })
}

/// Chooses system faces for the scripts egui's fonts lack (see the module's doc) and reads them (for
/// good: once per process, through [`found`]).
fn discover() -> Fallbacks {
    let mut db = fontdb::Database::new();
    db.load_system_fonts();
    choose(&db, &mut covered_by_defaults())
}

/// For each script, whether egui's default fonts have all its sample characters.
fn covered_by_defaults() -> Vec<bool> {
    let defs = FontDefinitions::default();
    let faces: Vec<ttf_parser::Face<'_>> = defs
        .font_data
        .values()
        .filter_map(|d| ttf_parser::Face::parse(&d.font, d.index).ok())
        .collect();
    SCRIPTS
        .iter()
        .map(|s| {
            s.samples
                .iter()
                .all(|&c| faces.iter().any(|f| f.glyph_index(c).is_some()))
        })
        .collect()
}

/// A candidate face: what it covers and how well it suits.
struct Candidate {
    id: fontdb::ID,
    family: String,
    covers: Vec<bool>,
    file_bytes: u64,
    sans: bool,
    regular: bool,
}

fn choose(db: &fontdb::Database, covered: &mut [bool]) -> Fallbacks {
    let candidates: Vec<Candidate> = if covered.iter().all(|&c| c) {
        Vec::new()
    } else {
        db.faces().filter_map(|info| candidate(db, info)).collect()
    };
    let mut fallbacks = Fallbacks {
        faces: Vec::new(),
        missing: Vec::new(),
        bytes: 0,
    };
    let mut chosen: Vec<fontdb::ID> = Vec::new();
    let region = cjk_region();
    for (i, script) in SCRIPTS.iter().enumerate() {
        if covered[i] {
            continue;
        }
        let best = candidates
            .iter()
            .filter(|c| c.covers[i] && !chosen.contains(&c.id))
            .filter(|c| fallbacks.bytes + c.file_bytes <= MAX_FALLBACK_BYTES)
            .max_by_key(|c| {
                let made_for = script.hints.iter().any(|h| c.family.contains(h));
                let region = c.family.ends_with(region);
                (
                    made_for,
                    c.sans,
                    c.regular,
                    region,
                    std::cmp::Reverse(c.file_bytes),
                )
            });
        let loaded = best
            .filter(|_| fallbacks.faces.len() < MAX_FALLBACK_FONTS)
            .and_then(|c| load(db, c).map(|data| (c, data)));
        match loaded {
            Some((c, data)) => {
                for (j, done) in covered.iter_mut().enumerate() {
                    *done |= c.covers[j];
                }
                fallbacks.bytes += data.font.len() as u64;
                fallbacks
                    .faces
                    .push((format!("{} [{}]", c.family, c.id), Arc::new(data)));
                chosen.push(c.id);
            }
            None => fallbacks.missing.push(script.name),
        }
    }
    fallbacks
}

/// A face that could be a fallback: upright, outlines (not a colour bitmap font egui cannot draw),
/// not too big; `None` for the rest.
fn candidate(db: &fontdb::Database, info: &fontdb::FaceInfo) -> Option<Candidate> {
    if info.style != fontdb::Style::Normal || info.weight.0 < 300 || info.weight.0 > 500 {
        return None;
    }
    let file_bytes = match &info.source {
        fontdb::Source::File(path) => std::fs::metadata(path).ok()?.len(),
        _ => return None,
    };
    if file_bytes > MAX_FONT_FILE_BYTES {
        return None;
    }
    let covers = db.with_face_data(info.id, |data, index| {
        let face = ttf_parser::Face::parse(data, index).ok()?;
        let tables = face.tables();
        if tables.glyf.is_none() && tables.cff.is_none() {
            return None;
        }
        Some(
            SCRIPTS
                .iter()
                .map(|s| s.samples.iter().all(|&c| face.glyph_index(c).is_some()))
                .collect::<Vec<bool>>(),
        )
    })??;
    let family = info
        .families
        .first()
        .map(|(name, _)| name.clone())
        .unwrap_or_default();
    Some(Candidate {
        id: info.id,
        sans: family.contains("Sans") && !family.contains("Mono") && !info.monospaced,
        regular: info.weight.0 == 400,
        family,
        covers,
        file_bytes,
    })
}

/// The CJK variant the user's language asks for (Han characters differ between them), as the Noto CJK
/// families end their names: JP, KR, TC (Taiwan), HK, else SC (simplified Chinese).
fn cjk_region() -> &'static str {
    let lang = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default();
    match lang.get(..5).unwrap_or(&lang) {
        l if l.starts_with("ja") => "JP",
        l if l.starts_with("ko") => "KR",
        "zh_TW" => "TC",
        "zh_HK" => "HK",
        _ => "SC",
    }
}

/// The characters of `text` (other than white space) that no font of `family` in `defs` has: egui
/// draws each as its replacement box.
pub fn missing_chars(defs: &FontDefinitions, family: &FontFamily, text: &str) -> Vec<char> {
    let faces: Vec<ttf_parser::Face<'_>> = defs
        .families
        .get(family)
        .into_iter()
        .flatten()
        .filter_map(|name| defs.font_data.get(name))
        .filter_map(|d| ttf_parser::Face::parse(&d.font, d.index).ok())
        .collect();
    let mut missing = Vec::new();
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        if !faces.iter().any(|f| f.glyph_index(c).is_some()) && !missing.contains(&c) {
            missing.push(c);
        }
    }
    missing
}

/// Reads a chosen face's file into memory.
fn load(db: &fontdb::Database, c: &Candidate) -> Option<FontData> {
    let (source, index) = db.face_source(c.id)?;
    let fontdb::Source::File(path) = source else {
        return None;
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot read a fallback font: {e}");
            return None;
        }
    };
    if let Err(e) = skrifa::FontRef::from_index(&bytes, index) {
        tracing::warn!(path = %path.display(), "egui could not read this font: {e}");
        return None;
    }
    // Kept for the process's life: egui borrows it (a font set of its own per scale would copy it).
    let mut data = FontData::from_static(Box::leak(bytes.into_boxed_slice()));
    data.index = index;
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_database_adds_nothing_and_names_what_is_missing() {
        let db = fontdb::Database::new();
        let mut covered = covered_by_defaults();
        assert!(covered[0], "egui's own fonts cover Latin");
        let fallbacks = choose(&db, &mut covered);
        assert!(fallbacks.faces.is_empty());
        assert!(fallbacks.missing.contains(&"CJK"));
        assert!(fallbacks.missing.contains(&"Arabic"));
        assert!(!fallbacks.missing.contains(&"Latin"));
    }
}
