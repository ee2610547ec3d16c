//! The engine with the embedded model: determinism, guards, primers, model checks, and the
//! `generate` / `render` commands. Needs the ONNX Runtime library (`cargo xtask onnxruntime`).

use pianoforte::codec::{self, Event, Note, PedalChange, Performance, Pitch, VOCABULARY};
use pianoforte::engine::control::{Control, KEY_CHOICE_ONSETS, KeyControl};
use pianoforte::engine::model::{EMBEDDED_MODEL, Error, LoadOptions, Model, ModelSource};
use pianoforte::engine::runtime::{self, RuntimeOptions};
use pianoforte::engine::sampling::Sampling;
use pianoforte::engine::{self, Engine, Guards, Settings};
use std::path::PathBuf;
use std::process::Command;

/// The model under test: the embedded one, or `PIANOFORTE_TEST_MODEL` (a file) to run these
/// tests against another model without rebuilding.
fn source() -> ModelSource {
    std::env::var_os("PIANOFORTE_TEST_MODEL").map_or(ModelSource::Embedded, |p| ModelSource::File(p.into()))
}

fn model_bytes() -> Vec<u8> {
    match source() {
        ModelSource::Embedded => EMBEDDED_MODEL.to_vec(),
        ModelSource::File(path) => std::fs::read(path).unwrap(),
    }
}

fn load() -> Model {
    Model::load(&source(), &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn engine(settings: Settings) -> Engine {
    Engine::new(load(), settings).unwrap_or_else(|e| panic!("{e}"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pianoforte-engine-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn hot(seed: u64) -> Settings {
    Settings { sampling: Sampling { temperature: 2.0, ..Sampling::default() }, seed, ..Settings::default() }
}

/// A short primer: a C major arpeggio with the pedal down, then one chord still held at the end.
fn primer_performance() -> Performance {
    let mut notes = Vec::new();
    for (k, pitch) in [48u8, 52, 55, 60, 64, 67, 72].iter().enumerate() {
        let start = k as f64 * 0.25;
        notes.push(Note { pitch: *pitch, velocity: 40 + 10 * k as u8, start, end: start + 0.6 });
    }
    notes.push(Note { pitch: 36, velocity: 90, start: 2.0, end: 3.0 });
    let pedal = vec![PedalChange { time: 0.1, down: true }, PedalChange { time: 1.9, down: false }];
    Performance { notes, pedal, duration: 3.0 }
}

#[test]
fn same_seed_gives_identical_output_and_another_seed_does_not() {
    let run = |seed: u64| {
        let mut e = engine(Settings { seed, ..Settings::default() });
        let g = engine::generate(&mut e, &[], 20.0).unwrap();
        (g.events.clone(), g.midi(true))
    };
    let (events_a, midi_a) = run(11);
    let (events_b, midi_b) = run(11);
    let (events_c, _) = run(12);
    assert!(events_a.len() > 50);
    assert_eq!(events_a, events_b);
    assert_eq!(midi_a, midi_b, "same seed, same model, same settings: byte-identical MIDI");
    assert_ne!(events_a, events_c);

    // Reseeding and re-priming one engine gives the same as a fresh one.
    let mut e = engine(Settings { seed: 99, ..Settings::default() });
    engine::generate(&mut e, &[], 5.0).unwrap();
    e.reseed(11);
    assert_eq!(engine::generate(&mut e, &[], 20.0).unwrap().events, events_a);
}

/// The motif memory (issue 21) changes the take, keeps it reproducible, and starts empty with
/// every new performance: a take after another equals the same take from a fresh engine.
#[test]
fn the_motif_memory_is_reproducible_and_forgets_the_last_performance() {
    let with_memory = |memory: f32| Settings { sampling: Sampling { memory, ..Sampling::default() }, seed: 5, ..Settings::default() };
    let take = |e: &mut Engine| engine::generate(e, &[], 30.0).unwrap().events;
    let fresh = take(&mut engine(with_memory(1.0)));
    assert_eq!(take(&mut engine(with_memory(1.0))), fresh);
    assert_ne!(take(&mut engine(with_memory(0.0))), fresh, "the memory changes what is played");
    let mut e = engine(with_memory(1.0));
    e.reseed(77);
    take(&mut e);
    e.reseed(5);
    assert_eq!(take(&mut e), fresh, "the second take remembers nothing of the first");
}

/// Checks every event against the guards with state kept independently of the engine.
fn check_guards(steps: &[engine::Step], guards: &Guards) {
    let mut onset: [Option<f64>; 128] = [None; 128];
    let (mut now, mut pedal) = (0.0f64, false);
    for (i, step) in steps.iter().enumerate() {
        assert!((step.time - now).abs() < 1e-9, "step {i}: time {} but the shifts add up to {now}", step.time);
        match step.event {
            Event::NoteOn(p) => {
                let p = p.midi();
                assert!(onset[p as usize].is_none(), "step {i}: NOTE_ON {p} while it sounds");
                onset[p as usize] = Some(now);
                let down = onset.iter().filter(|o| o.is_some()).count();
                assert!(down <= guards.max_polyphony, "step {i}: {down} keys down");
            }
            Event::NoteOff(p) => {
                let p = p.midi();
                let start = onset[p as usize].take().unwrap_or_else(|| panic!("step {i}: NOTE_OFF {p} of a silent key"));
                assert!(now - start <= guards.max_note_seconds + 1e-9, "step {i}: key {p} held {} s", now - start);
            }
            Event::TimeShift(s) => {
                now += s.steps() as f64 / 100.0;
                for (p, o) in onset.iter().enumerate() {
                    if let Some(start) = o {
                        assert!(now - start <= guards.max_note_seconds + 1e-9, "step {i}: key {p} held {} s", now - start);
                    }
                }
            }
            Event::PedalDown => {
                assert!(!pedal, "step {i}: PEDAL down while down");
                pedal = true;
            }
            Event::PedalUp => {
                assert!(pedal, "step {i}: PEDAL up while up");
                pedal = false;
            }
            Event::Velocity(_) => {}
        }
    }
}

#[test]
fn guards_hold_over_many_steps_at_temperature_two() {
    for guards in [Guards::default(), Guards { max_polyphony: 3, max_note_seconds: 0.5 }] {
        let mut e = engine(Settings { guards, ..hot(5) });
        let steps: Vec<_> = (0..15_000).map(|_| e.step().unwrap()).collect();
        check_guards(&steps, &guards);
        let forced = steps.iter().filter(|s| s.forced).count();
        let notes = steps.iter().filter(|s| matches!(s.event, Event::NoteOn(_))).count();
        assert!(notes > 100, "{notes} notes");
        println!("{guards:?}: {notes} notes, {forced} forced NOTE_OFFs in {} s", e.now());
    }
}

#[test]
fn primer_is_kept_at_the_start_and_continued() {
    let primer = codec::encode(&primer_performance());
    let mut e = engine(Settings { seed: 4, ..Settings::default() });
    let g = engine::generate(&mut e, &primer, 10.0).unwrap();
    assert_eq!(&g.events[..primer.len()], &primer[..]);
    assert_eq!(g.primer_events, primer.len());
    let primer_end: f64 = primer.iter().map(|e| if let Event::TimeShift(s) = e { s.steps() as f64 / 100.0 } else { 0.0 }).sum();
    assert!((g.seconds - 10.0).abs() < 1e-9, "{} s generated", g.seconds);
    // With the primer: its notes come first, unchanged (within the codec's 5 ms).
    let with = g.performance(true);
    for (a, b) in primer_performance().notes.iter().zip(&with.notes) {
        assert_eq!(a.pitch, b.pitch);
        assert!((a.start - b.start).abs() <= 0.005 + 1e-9);
    }
    assert!((with.duration - (primer_end + 10.0)).abs() < 0.6, "{} s", with.duration);
    // Without: the continuation alone, from 0 s.
    let without = g.performance(false);
    assert!(without.duration <= 10.0 + 0.5 + 1e-9, "{} s", without.duration);
    // The guards know about the primer: its keys are up at its end, so the continuation's first
    // events include no NOTE_OFF of a primer key that was already released.
    let mut steps = Vec::new();
    let mut time = 0.0;
    for &event in &g.events {
        steps.push(engine::Step { event, time, forced: false });
        if let Event::TimeShift(s) = event {
            time += s.steps() as f64 / 100.0;
        }
    }
    check_guards(&steps, &Guards::default());
}

#[test]
fn stepping_gives_the_same_logits_as_one_primer_call() {
    let primer = codec::encode(&primer_performance());
    let mut a = engine(Settings::default());
    a.prime(&primer).unwrap();
    let mut b = engine(Settings::default());
    b.prime(&[]).unwrap();
    for &event in &primer {
        b.feed(event).unwrap();
    }
    let diff = a.logits().iter().zip(b.logits()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-4, "one call of T = {} vs {} steps: max |diff| = {diff}", primer.len() + 1, primer.len());
    assert_eq!(a.now(), b.now());
    assert_eq!(a.state(), b.state());
}

#[test]
fn density_control_is_fed_to_the_model() {
    let mut e = engine(Settings::default());
    let off = e.logits().to_vec();
    e.set_control(Control::NotesPerSecond(20.0));
    e.prime(&[]).unwrap();
    let dense = e.logits().to_vec();
    assert_ne!(off, dense, "the control one-hot must reach the model");
    assert_eq!(e.density().bin_of(20.0), 11);
    // With a calibration in the card a request goes to the bin that measurably plays nearest it.
    let index = e.density().index_of(Control::NotesPerSecond(20.0));
    assert!(index < e.density().no_control(), "a density bin, not `off`: {index}");
}

#[test]
fn the_key_control_and_the_state_reach_a_format_2_model() {
    let mut e = engine(Settings::default());
    // The built-in model is format 2 or later: these inputs must exist (no skipping).
    assert!(e.model().has_features(), "the built-in model is format {}", e.model().format());
    let any = e.logits().to_vec();
    let d_minor = e.model().card.key_index("D minor").expect("the card names D minor");
    assert_eq!(e.model().card.key_index("d minor"), Some(d_minor));
    e.set_key(KeyControl::Key(d_minor as u8));
    e.prime(&[]).unwrap();
    assert_ne!(any, e.logits().to_vec(), "the key vector must reach the model");
    // A histogram of D, F, A is another control again; all zeros is Any.
    let mut h = [0.0f32; 12];
    (h[2], h[5], h[9]) = (3.0, 2.0, 2.0);
    e.set_key(KeyControl::PitchClasses(h));
    e.prime(&[]).unwrap();
    let played = e.logits().to_vec();
    e.set_key(KeyControl::PitchClasses([0.0; 12]));
    e.prime(&[]).unwrap();
    assert_ne!(played, e.logits().to_vec());
    assert_eq!(any, e.logits().to_vec(), "zeros = Any");
    // The state features reach it: the same event after different histories gives different logits.
    let c4 = codec::Pitch::new(60).unwrap();
    e.prime(&[codec::Event::NoteOn(c4)]).unwrap();
    let held = e.logits().to_vec();
    e.prime(&[codec::Event::PedalDown]).unwrap();
    assert_ne!(held, e.logits().to_vec());
}

/// `Any` is the model's own key: off until it has heard enough onsets, then the card key that
/// fits them, held to the end; `Off` never conditions.
#[test]
fn key_any_settles_on_the_key_of_what_it_heard_and_holds_it() {
    let mut e = engine(Settings::default());
    // The built-in model is format 2 or later: these inputs must exist (no skipping).
    assert!(e.model().has_features(), "the built-in model is format {}", e.model().format());
    let d_minor = e.model().card.key_index("D minor").expect("the card names D minor") as u8;
    // A primer of D minor arpeggios and scales (D F A, E G Bb C#), enough onsets to choose.
    let notes = [62, 65, 69, 74, 64, 67, 70, 73, 62, 65, 69, 74, 69, 65, 62, 57, 50, 53];
    assert!(notes.len() as u32 >= KEY_CHOICE_ONSETS);
    let mut primer = Vec::new();
    for &n in &notes {
        let p = Pitch::new(n).unwrap();
        primer.extend([Event::Velocity(codec::VelocityBin::new(20).unwrap()), Event::NoteOn(p)]);
        primer.extend([Event::TimeShift(codec::Shift::new(15).unwrap()), Event::NoteOff(p)]);
    }
    e.prime(&primer).unwrap();
    assert_eq!(e.chosen_key(), Some(d_minor), "the primer is in D minor");
    let chosen = e.logits().to_vec();
    e.set_key(KeyControl::Key(d_minor));
    e.prime(&primer).unwrap();
    assert_eq!(chosen, e.logits().to_vec(), "Any after a D minor primer plays as Key D minor");
    assert_eq!(e.chosen_key(), None, "a named key is not a choice");
    e.set_key(KeyControl::Off);
    e.prime(&primer).unwrap();
    assert_ne!(chosen, e.logits().to_vec(), "Off is unconditioned");
    // Played from nothing: no key until the 16th onset, then one key for good.
    e.set_key(KeyControl::Any);
    e.reseed(3);
    e.prime(&[]).unwrap();
    let (mut onsets, mut settled_at) = (0, None);
    while e.now() < 30.0 {
        let step = e.step().unwrap();
        onsets += matches!(step.event, Event::NoteOn(_)) as u32;
        match (settled_at, e.chosen_key()) {
            (None, Some(k)) => settled_at = Some((onsets, k)),
            (Some((_, k)), now) => assert_eq!(now, Some(k), "the key holds"),
            (None, None) => assert!(onsets < KEY_CHOICE_ONSETS, "no key after {onsets} onsets"),
        }
    }
    assert_eq!(settled_at.map(|(n, _)| n), Some(KEY_CHOICE_ONSETS));
    // Changing another control, or setting Any again, does not unsettle it.
    let k = e.chosen_key();
    e.set_control(Control::NotesPerSecond(4.0));
    e.set_key(KeyControl::Any);
    assert_eq!(e.chosen_key(), k);
}

#[test]
fn the_grammar_holds_over_many_steps() {
    // What a codec stream can never hold: only a NOTE_ON after a VELOCITY, no repeated velocity bin,
    // no shift after a short shift.
    let mut e = engine(hot(17));
    let mut prev: Option<codec::Event> = None;
    let mut velocity = None;
    for _ in 0..4000 {
        let step = e.step().unwrap();
        if !step.forced {
            match (prev, step.event) {
                (Some(codec::Event::Velocity(_)), next) => assert!(matches!(next, codec::Event::NoteOn(_)), "{next:?} after a VELOCITY"),
                (Some(codec::Event::TimeShift(s)), codec::Event::TimeShift(_)) => assert_eq!(s.steps(), 100, "a shift after a short shift"),
                _ => {}
            }
            if let codec::Event::Velocity(b) = step.event {
                assert!(velocity != Some(b) || e.state().last_onset().is_none(), "a repeated velocity bin");
            }
        }
        if let codec::Event::Velocity(b) = step.event {
            velocity = Some(b);
        }
        prev = Some(step.event);
    }
}

#[test]
fn settings_out_of_range_are_refused() {
    let bad = Settings { sampling: Sampling { temperature: 3.0, ..Sampling::default() }, ..Settings::default() };
    let Err(error) = Engine::new(load(), bad) else { panic!("temperature 3.0 accepted") };
    assert!(error.to_string().contains("temperature must lie in 0.1..=2"), "{error}");
    let mut e = engine(Settings::default());
    assert!(e.set_sampling(Sampling { top_p: Some(1.5), ..Sampling::default() }).is_err());
    assert!(e.set_guards(Guards { max_polyphony: 0, max_note_seconds: 5.0 }).is_err());
    assert!(engine::generate(&mut e, &[], 0.0).is_err());
}

#[test]
fn engine_can_move_to_another_thread() {
    fn is_send<T: Send>() {}
    is_send::<Engine>();
    // Primed here, stepped on another thread: the same events as an engine that never moved.
    let mut e = engine(Settings { seed: 1, ..Settings::default() });
    let moved = std::thread::spawn(move || (0..100).map(|_| e.step().unwrap().event).collect::<Vec<_>>()).join().unwrap();
    let mut e = engine(Settings { seed: 1, ..Settings::default() });
    let stayed: Vec<_> = (0..100).map(|_| e.step().unwrap().event).collect();
    assert_eq!(moved, stayed);
}

// ----------------------------------------------------------------- bad model files

/// A minimal protobuf editor (enough to change an ONNX file's metadata and declared shapes).
mod proto {
    #[derive(Clone, Debug)]
    pub enum Value {
        Varint(u64),
        Fixed64([u8; 8]),
        Bytes(Vec<u8>),
        Fixed32([u8; 4]),
    }

    #[derive(Clone, Debug)]
    pub struct Field {
        pub number: u64,
        pub value: Value,
    }

    fn varint(bytes: &[u8], at: &mut usize) -> u64 {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let b = bytes[*at];
            *at += 1;
            value |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return value;
            }
            shift += 7;
        }
    }

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub fn parse(bytes: &[u8]) -> Vec<Field> {
        let (mut fields, mut at) = (Vec::new(), 0);
        while at < bytes.len() {
            let key = varint(bytes, &mut at);
            let value = match key & 7 {
                0 => Value::Varint(varint(bytes, &mut at)),
                1 => {
                    at += 8;
                    Value::Fixed64(bytes[at - 8..at].try_into().unwrap())
                }
                2 => {
                    let n = varint(bytes, &mut at) as usize;
                    at += n;
                    Value::Bytes(bytes[at - n..at].to_vec())
                }
                5 => {
                    at += 4;
                    Value::Fixed32(bytes[at - 4..at].try_into().unwrap())
                }
                w => panic!("unsupported wire type {w}"),
            };
            fields.push(Field { number: key >> 3, value });
        }
        fields
    }

    pub fn write(fields: &[Field]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in fields {
            let wire = match f.value {
                Value::Varint(_) => 0,
                Value::Fixed64(_) => 1,
                Value::Bytes(_) => 2,
                Value::Fixed32(_) => 5,
            };
            put_varint(&mut out, f.number << 3 | wire);
            match &f.value {
                Value::Varint(v) => put_varint(&mut out, *v),
                Value::Fixed64(b) => out.extend_from_slice(b),
                Value::Bytes(b) => {
                    put_varint(&mut out, b.len() as u64);
                    out.extend_from_slice(b);
                }
                Value::Fixed32(b) => out.extend_from_slice(b),
            }
        }
        out
    }

    pub fn bytes(f: &Field) -> &[u8] {
        match &f.value {
            Value::Bytes(b) => b,
            other => panic!("field {} is {other:?}, not bytes", f.number),
        }
    }

    /// Rewrites every length-delimited field `number` of a message with `edit`.
    pub fn edit(message: &[u8], number: u64, edit: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
        let mut fields = parse(message);
        fields.retain_mut(|f| {
            if f.number != number {
                return true;
            }
            match edit(bytes(f)) {
                Some(new) => {
                    f.value = Value::Bytes(new);
                    true
                }
                None => false,
            }
        });
        write(&fields)
    }
}

/// The embedded model with its model card's JSON passed through `change` (None drops the card).
fn with_card(change: impl Fn(&mut serde_json::Value) -> bool) -> Vec<u8> {
    // ModelProto.metadata_props = 14; StringStringEntryProto: key = 1, value = 2.
    proto::edit(&model_bytes(), 14, &mut |entry| {
        let mut fields = proto::parse(entry);
        if String::from_utf8_lossy(proto::bytes(&fields[0])) != "pianoforte" {
            return Some(entry.to_vec());
        }
        let mut card: serde_json::Value = serde_json::from_slice(proto::bytes(&fields[1])).unwrap();
        if !change(&mut card) {
            return None;
        }
        fields[1].value = proto::Value::Bytes(serde_json::to_vec(&card).unwrap());
        Some(proto::write(&fields))
    })
}

/// The embedded model with an output layer of `vocab` events instead of 310: every float
/// initializer whose last dimension is 310 (the head's weight and bias) keeps its first `vocab`
/// columns, and the declared `logits` output follows. What a model trained on another vocabulary
/// looks like.
fn with_vocab(vocab: u64) -> Vec<u8> {
    // ModelProto.graph = 7; GraphProto: initializer = 5, output = 12. TensorProto: dims = 1,
    // data_type = 2 (1: float), raw_data = 9. ValueInfoProto: name = 1, type = 2; TypeProto.tensor_type
    // = 1; Tensor.shape = 2; TensorShapeProto.dim = 1; Dimension.dim_value = 1.
    fn dims_of(fields: &[proto::Field]) -> Vec<u64> {
        let mut dims = Vec::new();
        for f in fields.iter().filter(|f| f.number == 1) {
            match &f.value {
                proto::Value::Varint(v) => dims.push(*v),
                proto::Value::Bytes(packed) => {
                    // Packed varints.
                    let mut at = 0;
                    while at < packed.len() {
                        let (mut v, mut shift) = (0u64, 0);
                        loop {
                            let b = packed[at];
                            at += 1;
                            v |= ((b & 0x7f) as u64) << shift;
                            shift += 7;
                            if b < 0x80 {
                                break;
                            }
                        }
                        dims.push(v);
                    }
                }
                _ => {}
            }
        }
        dims
    }
    let full = VOCABULARY.size as u64;
    proto::edit(&model_bytes(), 7, &mut |graph| {
        let graph = proto::edit(graph, 5, &mut |tensor| {
            let fields = proto::parse(tensor);
            let dims = dims_of(&fields);
            if dims.last() != Some(&full) {
                return Some(tensor.to_vec());
            }
            let raw = fields.iter().find(|f| f.number == 9).map(proto::bytes).expect("raw_data");
            let mut new_fields: Vec<proto::Field> = dims[..dims.len() - 1]
                .iter()
                .chain(std::iter::once(&vocab))
                .map(|&d| proto::Field { number: 1, value: proto::Value::Varint(d) })
                .collect();
            let mut data = Vec::new();
            for row in raw.chunks(full as usize * 4) {
                data.extend_from_slice(&row[..vocab as usize * 4]);
            }
            for f in fields.iter().filter(|f| f.number != 1 && f.number != 9) {
                new_fields.push(f.clone());
            }
            new_fields.push(proto::Field { number: 9, value: proto::Value::Bytes(data) });
            Some(proto::write(&new_fields))
        });
        Some(proto::edit(&graph, 12, &mut |info| {
            if proto::bytes(&proto::parse(info)[0]) != b"logits" {
                return Some(info.to_vec());
            }
            Some(proto::edit(info, 2, &mut |ty| {
                Some(proto::edit(ty, 1, &mut |tensor| {
                    Some(proto::edit(tensor, 2, &mut |shape| {
                        let mut dims = proto::parse(shape);
                        let last = dims.len() - 1;
                        dims[last].value =
                            proto::Value::Bytes(proto::write(&[proto::Field { number: 1, value: proto::Value::Varint(vocab) }]));
                        Some(proto::write(&dims))
                    }))
                }))
            }))
        }))
    })
}

fn load_bytes(bytes: &[u8]) -> Result<Model, Error> {
    Model::from_bytes(bytes, "bad.onnx".into(), &LoadOptions::default())
}

#[test]
fn the_editor_leaves_a_model_intact_when_nothing_changes() {
    let same = with_card(|_| true);
    let model = load_bytes(&same).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(model.card.vocab_size, 310);
}

#[test]
fn a_wrong_vocabulary_is_reported_precisely() {
    let bad = with_card(|card| {
        card["vocab_size"] = 300.into();
        card["vocabulary_version"] = 2.into();
        true
    });
    assert!(bad.len() < model_bytes().len() + 100, "fixtures stay small");
    let error = load_bytes(&bad).unwrap_err();
    let Error::Mismatch { ref problems, .. } = error else { panic!("{error}") };
    assert_eq!(problems.len(), 2, "{error}");
    let text = error.to_string();
    assert!(text.starts_with("bad.onnx does not match this build of pianoforte:"), "{text}");
    assert!(text.contains("vocabulary_version is 2 in the model card, but this build's codec speaks vocabulary version 1"), "{text}");
    assert!(text.contains("vocab_size is 300 in the model card, but the codec has 310 events"), "{text}");
}

#[test]
fn a_wrong_control_is_reported_precisely() {
    let bad = with_card(|card| {
        card["control"]["size"] = 12.into();
        card["control"]["kind"] = "tempo".into();
        true
    });
    let text = load_bytes(&bad).unwrap_err().to_string();
    assert!(text.contains("control.kind is `tempo`"), "{text}");
    assert!(text.contains("control.size is 12, too small for 15 density bins"), "{text}");
    assert!(text.contains("input `control` has shape [?,?,16], expected [?,?,12]"), "{text}");
}

#[test]
fn an_unknown_format_is_refused_in_words() {
    let text = load_bytes(&with_card(|card| {
        card["format_version"] = 4.into();
        true
    }))
    .unwrap_err()
    .to_string();
    assert!(text.contains("format_version is 4, but this build of pianoforte runs model formats 1, 2 and 3"), "{text}");
    if load().has_features() {
        let text = load_bytes(&with_card(|card| {
            card["state_features"]["size"] = 130.into();
            true
        }))
        .unwrap_err()
        .to_string();
        assert!(text.contains("state_features in the model card differ from this build's codec"), "{text}");
    }
    if load().has_beats() {
        let text = load_bytes(&with_card(|card| {
            card["beat_features"]["size"] = 51.into();
            true
        }))
        .unwrap_err()
        .to_string();
        assert!(text.contains("beat_features in the model card differ from this build's codec"), "{text}");
    }
}

#[test]
fn a_missing_or_broken_card_is_reported() {
    let text = load_bytes(&with_card(|_| false)).unwrap_err().to_string();
    assert!(text.contains("no `pianoforte` model card in the ONNX metadata_props"), "{text}");
    let text = load_bytes(&with_card(|card| {
        card.as_object_mut().unwrap().remove("layers");
        true
    }))
    .unwrap_err()
    .to_string();
    assert!(text.contains("the model card (metadata `pianoforte`) is malformed: missing field `layers`"), "{text}");
}

#[test]
fn a_model_with_another_output_size_is_reported() {
    // The card still says 310: the graph itself is checked, not only the card.
    let bad = with_vocab(300);
    let text = load_bytes(&bad).unwrap_err().to_string();
    assert!(text.contains("output `logits` has shape [?,?,300], expected [?,?,310]"), "{text}");
}

#[test]
fn a_file_that_is_no_model_is_reported() {
    let text = load_bytes(b"certainly not an ONNX file").unwrap_err().to_string();
    assert!(text.starts_with("bad.onnx: ONNX Runtime cannot load it as a model"), "{text}");
    let missing = ModelSource::File("/nonexistent/model.onnx".into());
    let text = Model::load(&missing, &LoadOptions::default()).unwrap_err().to_string();
    assert!(text.contains("/nonexistent/model.onnx: cannot read"), "{text}");
}

// ----------------------------------------------------------------- the library and the commands

#[test]
fn a_missing_library_is_reported_in_words() {
    let options = RuntimeOptions { library: Some("/nonexistent/libonnxruntime.so".into()), search_folders: vec![] };
    let text = runtime::locate(&options).unwrap_err().to_string();
    assert!(text.contains("/nonexistent/libonnxruntime.so"), "{text}");
    assert!(text.contains("run `cargo xtask onnxruntime`"), "{text}");
    // The default lookup finds the provisioned copy.
    assert!(runtime::locate(&RuntimeOptions::default()).is_ok());
}

fn pianoforte() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pianoforte"))
}

#[test]
fn generate_without_a_library_says_what_to_run_and_does_not_panic() {
    let dir = temp_dir("nolib");
    for (env, args) in [(None, vec!["--onnxruntime", "/nonexistent/libonnxruntime.so.1.32.0"]), (Some("/nonexistent/lib.so"), vec![])] {
        let mut cmd = pianoforte();
        cmd.args(["generate", "--seconds", "1", "-o"]).arg(dir.join("x.mid")).args(&args);
        if let Some(path) = env {
            cmd.env("ORT_DYLIB_PATH", path);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("run `cargo xtask onnxruntime`"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        if env.is_some() {
            assert!(stderr.contains("ORT_DYLIB_PATH"), "{stderr}");
        }
    }
    assert!(!dir.join("x.mid").exists());
}

#[test]
fn generate_and_render_commands_work() {
    let dir = temp_dir("commands");
    let primer = dir.join("primer.mid");
    std::fs::write(&primer, pianoforte::codec::midi::write(&primer_performance())).unwrap();
    let run = |out: &str, extra: &[&str]| {
        let output = pianoforte()
            .args(["generate", "--seconds", "6", "--seed", "5", "--temperature", "0.9", "--top-p", "0.95", "--density", "4", "-o"])
            .arg(dir.join(out))
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        stdout
    };
    let text = run("a.mid", &[]);
    assert!(text.contains("seed 5") && text.contains("events/s"), "{text}");
    run("b.mid", &[]);
    assert_eq!(std::fs::read(dir.join("a.mid")).unwrap(), std::fs::read(dir.join("b.mid")).unwrap());
    let text = run("c.mid", &["--count", "2", "--primer", primer.to_str().unwrap()]);
    assert!(text.contains("kept at the start"), "{text}");
    for name in ["c-1.mid", "c-2.mid"] {
        let read = pianoforte::codec::midi::read(&std::fs::read(dir.join(name)).unwrap()).unwrap();
        assert_eq!(read.performance.notes[0].pitch, 48, "{name} starts with the primer");
        assert!((read.performance.duration - 9.0).abs() < 0.6, "{name}: {} s", read.performance.duration);
    }
    let output = pianoforte().arg("render").arg(dir.join("c-1.mid")).arg("-o").arg(dir.join("c-1.png")).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let png = std::fs::read(dir.join("c-1.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vocabulary_constants_agree_with_the_engine() {
    // The engine masks by id ranges of the codec; make sure the layout it assumes holds.
    assert_eq!(Event::NoteOn(Pitch::LOWEST).id(), VOCABULARY.note_on_offset);
    assert_eq!(Event::NoteOff(Pitch::HIGHEST).id() + 1, VOCABULARY.time_shift_offset);
    assert_eq!(Event::PedalUp.id() + 1, VOCABULARY.size);
}

/// The built-in model hears the song's beats (format 3): a beat clock changes what it plays, the
/// same clock plays the same, and its onsets sit on the grid more often than in free time.
#[test]
fn the_built_in_model_plays_on_the_beat_clock_it_is_given() {
    use pianoforte::engine::{BeatClock, Meter};
    let mut e = engine(Settings { seed: 11, ..Settings::default() });
    assert!(e.model().has_beats(), "the built-in model is format {}", e.model().format());
    let mut onsets = |clock: Option<BeatClock>| {
        e.set_beat_clock(clock);
        e.reseed(11);
        let generated = engine::generate(&mut e, &[], 30.0).unwrap();
        generated.performance(false).notes.iter().map(|n| n.start).collect::<Vec<f64>>()
    };
    let free = onsets(None);
    let song = onsets(Some(BeatClock::steady(100.0, Meter::FOUR_FOUR)));
    assert_eq!(song, onsets(Some(BeatClock::steady(100.0, Meter::FOUR_FOUR))), "the same clock, the same performance");
    assert_ne!(song, free);
    // On the grid: within 0.06 beat of a quarter or a third of a beat (0.6 s beats at 100 BPM).
    let on_grid = |times: &[f64]| {
        let near = |t: f64| {
            let phase = (t / 0.6).fract();
            [0.0, 0.25, 1.0 / 3.0, 0.5, 2.0 / 3.0, 0.75, 1.0].iter().any(|g| (phase - g).abs() <= 0.06)
        };
        times.iter().filter(|&&t| near(t)).count() as f64 / times.len().max(1) as f64
    };
    let (song_share, free_share) = (on_grid(&song), on_grid(&free));
    assert!(song.len() > 100 && song_share > free_share + 0.05, "on grid: {song_share:.2} with beats, {free_share:.2} free");
}

/// Tightness (`engine::tightness`): following a beat, onsets sit on its grid far more often; the
/// same settings give the same performance; in free time it changes nothing. (The downbeat accent
/// is a small shift of the average, measured by `benches/beats.py`; its arithmetic is unit tested.)
#[test]
fn tightness_draws_onsets_to_the_grid_only_when_following_a_beat() {
    use pianoforte::engine::{BeatClock, Meter};
    let mut e = engine(Settings { seed: 12, ..Settings::default() });
    let mut play = |tightness: f32, clock: Option<BeatClock>| {
        e.set_sampling(Sampling { tightness, ..Sampling::default() }).unwrap();
        e.set_beat_clock(clock);
        e.reseed(12);
        engine::generate(&mut e, &[], 30.0).unwrap().performance(false).notes
    };
    let steady = || Some(BeatClock::steady(100.0, Meter::FOUR_FOUR));
    assert_eq!(play(0.75, None), play(0.0, None), "free time: no beat to pull towards");
    let (loose, tight) = (play(0.0, steady()), play(0.75, steady()));
    assert_eq!(tight, play(0.75, steady()), "reproducible");
    // 0.6 s beats at 100 BPM; on the grid within 0.06 beat.
    let on_grid = |notes: &[Note]| {
        let near = |n: &&Note, g: f64| ((n.start / 0.6).fract() - g).abs() <= 0.06;
        let hits = notes.iter().filter(|n| [0.0, 0.25, 1.0 / 3.0, 0.5, 2.0 / 3.0, 0.75, 1.0].iter().any(|&g| near(n, g)));
        hits.count() as f64 / notes.len().max(1) as f64
    };
    let (a, b) = (on_grid(&loose), on_grid(&tight));
    assert!(tight.len() > 100 && b > a + 0.08 && b > 0.8, "on grid: {b:.2} tight, {a:.2} loose");
}

/// `eval --beats`: only the annotated performances of an ASAP-style CSV, scored with their beats
/// and without (the built-in model hears them, so the two differ); none annotated is an error.
#[test]
fn eval_with_beats_scores_the_annotated_performances_with_and_without_them() {
    use pianoforte::cli::eval::{EvalOptions, evaluate};
    let dir = temp_dir("eval-beats");
    let notes: Vec<Note> = (0..64)
        .map(|k| Note {
            pitch: 48 + (k * 7 % 24) as u8,
            velocity: 60 + (k % 5) as u8 * 8,
            start: k as f64 * 0.3,
            end: k as f64 * 0.3 + 0.25,
        })
        .collect();
    let performance =
        Performance { notes, pedal: vec![PedalChange { time: 0.1, down: true }, PedalChange { time: 9.0, down: false }], duration: 19.5 };
    std::fs::write(dir.join("a.mid"), codec::midi::write(&performance)).unwrap();
    std::fs::write(dir.join("b.mid"), codec::midi::write(&performance)).unwrap();
    let beats: String = (0..32).map(|k| format!("{0}\t{0}\t{1}\n", k as f64 * 0.6, if k % 4 == 0 { "db" } else { "b" })).collect();
    std::fs::write(dir.join("a_annotations.txt"), beats).unwrap();
    let csv = dir.join("asap.csv");
    std::fs::write(&csv, "split,midi_performance,performance_annotations\nvalidation,a.mid,a_annotations.txt\nvalidation,b.mid,\n")
        .unwrap();
    let mut model = load();
    let options = EvalOptions { beats: true, ..EvalOptions::default() };
    let report = evaluate(&mut model, std::slice::from_ref(&csv), &options, &|_, _| {}).unwrap();
    let without = report.nll_without_beats_nats_per_event.expect("both figures");
    assert_eq!(report.docs, 1, "only the annotated performance");
    assert!(report.nll_nats_per_event.is_finite() && without.is_finite());
    assert_ne!(report.nll_nats_per_event, without, "the beats reach the model");
    let tight = evaluate(&mut model, std::slice::from_ref(&csv), &EvalOptions { tightness: 0.75, ..options.clone() }, &|_, _| {}).unwrap();
    assert_ne!(tight.nll_nats_per_event, report.nll_nats_per_event, "scored as drawn with the pull towards the beat");
    assert_eq!(tight.nll_without_beats_nats_per_event, Some(without), "without beats there is nothing to pull towards");
    std::fs::write(&csv, "split,midi_performance,performance_annotations\nvalidation,b.mid,\n").unwrap();
    let error = evaluate(&mut model, std::slice::from_ref(&csv), &options, &|_, _| {}).unwrap_err();
    assert!(error.contains("with beat annotations"), "{error}");
}
