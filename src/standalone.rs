//! pianoforte as a program of its own (JACK, ALSA or the dummy backend), mostly to see and test
//! the editor without a DAW: `cargo run --release --features standalone --bin pianoforte-standalone
//! -- --backend dummy`. Without a MIDI synthesizer connected nothing is heard.

fn main() {
    nice_plug::nice_export_standalone::<pianoforte::plugin::Pianoforte>();
}
