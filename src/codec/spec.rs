//! The machine-readable spec the Python trainer reads instead of retyping the codec:
//! `docs/spec/events.json` (vocabulary, velocity bins, music-state constants, density control)
//! and `docs/spec/vectors.json` (token sequences with the music state after every token, and
//! their density bins), which the Rust and the Python tests both check. The files are written
//! from this code; a test fails when they disagree (`PIANOFORTE_UPDATE_SPEC=1 cargo test spec`
//! rewrites them).

use super::beats::{
    BEAT_IN_BAR_OFFSET, BEAT_IN_BAR_SIZE, BEAT_SIZE, Beat, BeatGrid, METER_OFFSET, METER_SIZE, NO_BEAT_OFFSET, PERIOD_EDGES_STEPS,
    PERIOD_OFFSET, PHASE_BINS, PHASE_OFFSET, TO_BEAT_OFFSET, TO_BEAT_SIZE, TO_DIVISION_SIZE, TO_QUARTER_OFFSET, TO_THIRD_OFFSET,
    write_beat_features,
};
use super::density::{CONTROL_SIZE, DENSITY_EDGES, DENSITY_WINDOW_STEPS, NO_CONTROL_INDEX, density_bins};
use super::events::{Event, Pitch, STEPS_PER_SECOND, Shift, VOCABULARY, VelocityBin, from_text, to_ids};
use super::features::{
    Grammar, KEY_HALF_WINDOW_STEPS, KEY_SIZE, KEYS_OFFSET, PEDAL_OFFSET, SINCE_ONSET_EDGES, SINCE_ONSET_NONE, SINCE_ONSET_OFFSET,
    STATE_SIZE, VELOCITY_OFFSET, key_histograms, write_state_features,
};
use super::state::{MAX_NOTE_STEPS, MusicState};
use serde_json::{Value, json};

/// The token the model reads before the first event (input only, never predicted).
pub const START_TOKEN: u16 = VOCABULARY.size;

/// `docs/spec/events.json`.
pub fn events_spec() -> Value {
    let v = &VOCABULARY;
    json!({
        "vocabulary": {
            "version": v.version, "size": v.size, "start_token": START_TOKEN, "embed_size": START_TOKEN + 1,
            "note_on_offset": v.note_on_offset, "note_off_offset": v.note_off_offset,
            "time_shift_offset": v.time_shift_offset, "velocity_offset": v.velocity_offset,
            "pedal_down": v.pedal_down, "pedal_up": v.pedal_up,
            "min_pitch": v.min_pitch, "max_pitch": v.max_pitch, "time_step_ms": v.time_step_ms,
            "steps_per_second": STEPS_PER_SECOND as u32, "max_shift_steps": v.max_shift_steps,
            "velocity_bins": v.velocity_bins,
        },
        "velocity": {
            "bin_of_midi": (0..=127u8).map(|m| VelocityBin::of_midi(m).get()).collect::<Vec<_>>(),
            "midi_of_bin": (0..v.velocity_bins).map(|b| VelocityBin::new(b).expect("below 32").midi()).collect::<Vec<_>>(),
        },
        "music_state": { "max_note_steps": MAX_NOTE_STEPS, "initial_velocity_bin": VelocityBin::INITIAL.get() },
        "density": {
            "edges": DENSITY_EDGES, "half_window_steps": DENSITY_WINDOW_STEPS / 2,
            "window_seconds": DENSITY_WINDOW_STEPS as f64 / STEPS_PER_SECOND,
            "bins": DENSITY_EDGES.len() + 1, "control_size": CONTROL_SIZE, "no_control_index": NO_CONTROL_INDEX,
        },
        "state_features": {
            "size": STATE_SIZE,
            "keys_down": { "offset": KEYS_OFFSET, "size": v.max_pitch - v.min_pitch + 1 },
            "pedal": { "offset": PEDAL_OFFSET, "size": 1 },
            "velocity_bin": { "offset": VELOCITY_OFFSET, "size": v.velocity_bins },
            "since_onset": {
                "offset": SINCE_ONSET_OFFSET, "size": SINCE_ONSET_NONE + 1, "edges_steps": SINCE_ONSET_EDGES,
                "none_index": SINCE_ONSET_NONE,
            },
        },
        "key_control": {
            "size": KEY_SIZE, "half_window_steps": KEY_HALF_WINDOW_STEPS,
            "window_seconds": (2 * KEY_HALF_WINDOW_STEPS) as f64 / STEPS_PER_SECOND,
        },
        "beat_features": {
            "size": BEAT_SIZE,
            "no_beat": { "offset": NO_BEAT_OFFSET, "size": 1 },
            "phase": { "offset": PHASE_OFFSET, "size": PHASE_BINS },
            "beat_in_bar": { "offset": BEAT_IN_BAR_OFFSET, "size": BEAT_IN_BAR_SIZE },
            "meter": { "offset": METER_OFFSET, "size": METER_SIZE },
            "period": { "offset": PERIOD_OFFSET, "size": PERIOD_EDGES_STEPS.len() + 1, "edges_steps": PERIOD_EDGES_STEPS },
            "to_beat": { "offset": TO_BEAT_OFFSET, "size": TO_BEAT_SIZE },
            "to_quarter": { "offset": TO_QUARTER_OFFSET, "size": TO_DIVISION_SIZE, "parts": 4 },
            "to_third": { "offset": TO_THIRD_OFFSET, "size": TO_DIVISION_SIZE, "parts": 3 },
        },
    })
}

/// The state after every event, as the vectors write it.
fn states(events: &[Event]) -> Vec<Value> {
    let mut state = MusicState::new();
    events
        .iter()
        .map(|&event| {
            state.extend([event]);
            let keys: Vec<Value> = state.keys_down().map(|(pitch, key)| json!([pitch.midi(), key.onset, key.velocity.get()])).collect();
            json!({
                "step": state.step(), "velocity_bin": state.velocity().get(), "pedal": state.pedal_down(),
                "last_onset_step": state.last_onset(), "keys": keys,
            })
        })
        .collect()
}

/// The feature vectors cover the first events of each sequence (the file stays small).
const FEATURE_VECTOR_EVENTS: usize = 240;

/// Inclusive runs `[first, last]` of the ids the grammar forbids.
fn forbidden_runs(grammar: &Grammar) -> Vec<[u16; 2]> {
    let mut runs: Vec<[u16; 2]> = Vec::new();
    for id in 0..VOCABULARY.size {
        if grammar.allows(Event::from_id(id).expect("an event id")) {
            continue;
        }
        match runs.last_mut() {
            Some(run) if run[1] + 1 == id => run[1] = id,
            _ => runs.push([id, id]),
        }
    }
    runs
}

/// Before every event: the indices of the state features that are 1 (all others are 0), the
/// forbidden ids, and the key control.
fn features(events: &[Event]) -> Value {
    let mut grammar = Grammar::new();
    let mut buffer = [0.0f32; STATE_SIZE];
    let mut on = Vec::new();
    let mut forbidden = Vec::new();
    for &event in events {
        write_state_features(grammar.state(), &mut buffer);
        on.push(buffer.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(i, _)| i).collect::<Vec<_>>());
        forbidden.push(forbidden_runs(&grammar));
        grammar.apply(event);
    }
    let keys: Vec<Vec<f64>> = key_histograms(&to_ids(events)).iter().map(|h| h.iter().map(|&x| x as f64).collect()).collect();
    json!({ "state_on": on, "forbidden": forbidden, "key": keys })
}

/// A reproducible stream that visits every kind of event, long holds (the guard), restrikes,
/// redundant pedal events and stray NOTE_OFFs.
fn random_events(seed: u64, n: usize) -> Vec<Event> {
    let mut x = seed;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    (0..n)
        .map(|_| match next(10) {
            0..=2 => Event::NoteOn(Pitch::new(21 + next(88) as u8).expect("in range")),
            3..=4 => Event::NoteOff(Pitch::new(21 + next(88) as u8).expect("in range")),
            5..=6 => Event::TimeShift(Shift::new(1 + next(100) as u8).expect("in range")),
            7 => Event::Velocity(VelocityBin::new(next(32) as u8).expect("in range")),
            8 => Event::PedalDown,
            _ => Event::PedalUp,
        })
        .collect()
}

/// Beat grids and moments between, before and after their beats: the indices of the beat
/// features that are 1 at each moment.
fn beat_vectors() -> Vec<Value> {
    let grids: [(&str, Vec<(i64, bool)>); 5] = [
        ("three-four with a pickup", vec![(0, false), (50, false), (100, true), (150, false), (200, false), (250, true), (300, false)]),
        ("rubato, no downbeats", vec![(10, false), (40, false), (100, false), (233, false), (250, false)]),
        (
            "seven-eight then two",
            vec![
                (5, true),
                (35, false),
                (64, false),
                (90, false),
                (121, false),
                (150, false),
                (180, false),
                (211, true),
                (240, false),
                (271, true),
                (300, false),
            ],
        ),
        ("one beat", vec![(20, true)]),
        ("slow and uneven", vec![(0, true), (170, false), (181, false), (400, true)]),
    ];
    grids
        .into_iter()
        .map(|(name, beats)| {
            let grid = BeatGrid::new(beats.iter().map(|&(step, downbeat)| Beat { step, downbeat }).collect());
            let mut buffer = [0.0f32; BEAT_SIZE];
            let on: Vec<Vec<usize>> = (-3..420)
                .map(|step| {
                    write_beat_features(grid.position(step).as_ref(), &mut buffer);
                    (0..BEAT_SIZE).filter(|&i| buffer[i] != 0.0).collect()
                })
                .collect();
            json!({ "name": name, "beats": beats, "first_step": -3, "on": on })
        })
        .collect()
}

/// `docs/spec/vectors.json`: compact, one vector a line.
pub fn vectors() -> String {
    let texts = [
        ("restrike and stray off", "VEL 100\nON 60\nSHIFT 100ms\nON 60\nOFF 61\nSHIFT 10ms\nOFF 60\n"),
        (
            "guard releases in time order",
            "ON 70\nSHIFT 10ms\nON 50\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nON 70\n",
        ),
        ("pedal and velocity", "PEDAL up\nPEDAL down\nVEL 30\nON 21\nON 108\nPEDAL down\nSHIFT 1000ms\nVEL 127\nOFF 21\nPEDAL up\n"),
        (
            "due note-off after the guard",
            "VEL 80\nON 60\nON 62\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 20ms\nOFF 60\nOFF 60\nVEL 80\nON 62\n",
        ),
    ];
    let mut sequences: Vec<(String, Vec<Event>)> =
        texts.iter().map(|(name, text)| (name.to_string(), from_text(text).expect("valid text"))).collect();
    sequences.push(("random 1".into(), random_events(0x9e37_79b9_7f4a_7c15, 600)));
    sequences.push(("random 2, sparse".into(), random_events(0x2545_f491_4f6c_dd1d, 300)));
    let line = |value: Value| format!("    {value}");
    let states: Vec<String> =
        sequences.iter().map(|(name, events)| line(json!({ "name": name, "tokens": to_ids(events), "states": states(events) }))).collect();
    let densities: Vec<String> = sequences
        .iter()
        .map(|(_, events)| {
            let ids = to_ids(events);
            line(json!({ "tokens": ids, "bins": density_bins(&ids, &DENSITY_EDGES, DENSITY_WINDOW_STEPS) }))
        })
        .collect();
    let features: Vec<String> = sequences
        .iter()
        .map(|(name, events)| {
            let events = &events[..events.len().min(FEATURE_VECTOR_EVENTS)];
            line(json!({ "name": name, "tokens": to_ids(events), "before_each": features(events) }))
        })
        .collect();
    let beats: Vec<String> = beat_vectors().into_iter().map(line).collect();
    format!(
        "{{\n  \"music_state\": [\n{}\n  ],\n  \"density\": [\n{}\n  ],\n  \"features\": [\n{}\n  ],\n  \"beats\": [\n{}\n  ]\n}}\n",
        states.join(",\n"),
        densities.join(",\n"),
        features.join(",\n"),
        beats.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Compares a checked-in spec file with what the code writes (or rewrites it).
    fn check(name: &str, written: String) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/spec").join(name);
        if std::env::var_os("PIANOFORTE_UPDATE_SPEC").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &written).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert!(
            parse(&on_disk) == parse(&written),
            "{} disagrees with the codec: rewrite it with PIANOFORTE_UPDATE_SPEC=1 cargo test spec, and bump versions if \
             the language changed",
            path.display()
        );
    }

    #[test]
    fn the_spec_files_match_the_code() {
        check("events.json", serde_json::to_string_pretty(&events_spec()).unwrap() + "\n");
        check("vectors.json", vectors());
    }

    #[test]
    fn the_vectors_exercise_every_kind_of_change() {
        let vectors: Value = serde_json::from_str(&vectors()).unwrap();
        let all = vectors["music_state"].as_array().unwrap();
        let ids: Vec<u16> = all.iter().flat_map(|v| v["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u16)).collect();
        let events = crate::codec::from_ids(&ids).unwrap();
        let mut seen = [false; 3];
        let mut state = MusicState::new();
        for event in events {
            state.apply(event, |c| {
                if let crate::codec::Change::Release { why, .. } = c {
                    seen[why as usize] = true;
                }
            });
        }
        assert_eq!(seen, [true; 3], "NOTE_OFF, restrike and guard releases");
    }
}
