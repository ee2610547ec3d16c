//! `--suite perform` (issue 20): Perform my part while the transport runs. The track's part (a
//! melody over chords, every note at velocity 90, on the grid) is performed by the model: every
//! note of the part once, [`LATENCY`] behind it (reported to the host as latency) and at most
//! [`MAX_DEVIATION`] off, no longer flat, any pedal lifted; the part itself is not played.
//! The same part gives the same performance offline, at another block size and in real time.

use crate::host::{self, Action::*, OutKind, Plugin, Run, Scenario, Sizes, seg};
use clack_extensions::latency::PluginLatency;
use clack_host::prelude::*;
use std::path::Path;

type Outcome = Result<String, String>;

const RATE: f64 = 48_000.0;
/// As `perform::live` has them: the performance plays this long after the part...
const LATENCY: f64 = 1.302;
/// ...each onset and release at most this far from there (and chord notes a few ms apart).
const MAX_DEVIATION: f64 = 0.1 + 0.02;

/// Every check of the suite, by name.
pub fn checks(plugin: &Plugin, trace_dir: &Path) -> Vec<(String, Outcome)> {
    let run = |s: Scenario| host::run(plugin, &s, trace_dir, None);
    let bounce = run(offline(part("offline, 512-sample blocks", Sizes::Fixed(512))));
    let small = run(offline(part("offline, 64-sample blocks", Sizes::Fixed(64))));
    let mut real_time = part("real time, 256-sample blocks", Sizes::Fixed(256));
    (real_time.lockstep, real_time.speed) = (false, 1.0);
    let real_time = run(real_time);
    vec![
        ("the latency reported is Perform my part's, and none without it".into(), latency(plugin)),
        (
            "offline: every note of the part once, LATENCY behind, no longer flat, no pedal left down; the part itself unplayed".into(),
            bounce.as_ref().map_err(Clone::clone).and_then(performed),
        ),
        ("the same part offline at 64-sample blocks: the same performance".into(), same(&small, &bounce)),
        ("the same part in real time: the same performance".into(), same(&real_time, &bounce)),
    ]
}

fn offline(mut s: Scenario) -> Scenario {
    (s.offline, s.lockstep, s.speed) = (true, false, 0.0);
    s
}

/// The part: a melody in quarter notes at 120 BPM (0.5 s), chords on every second beat.
fn part(name: &str, sizes: Sizes) -> Scenario {
    let mut segments = vec![seg(0.5, vec![Param("Perform my part", "On"), Transport(true)])];
    for i in 0..16u8 {
        let mut notes = vec![Note(72 + [0, 2, 4, 5, 7, 5, 4, 2][i as usize % 8], 90, 0.45)];
        if i % 2 == 0 {
            notes.extend([48, 55, 64].map(|k| Note(k, 90, 0.95)));
        }
        segments.push(seg(0.5, notes));
    }
    segments.push(seg(3.0, vec![]));
    segments.push(seg(0.5, vec![Transport(false)]));
    Scenario::new(&format!("Perform my part, {name}"), RATE, sizes, segments)
}

/// A NOTE_ON: seconds, key, velocity.
type Onset = (f64, u8, u8);

/// The part's notes, and the NOTE_ONs played.
fn notes_in_and_out(run: &Run) -> (Vec<Onset>, Vec<Onset>) {
    let on = |sample: u64, kind: &OutKind| match *kind {
        OutKind::On { key, velocity } => Some((sample as f64 / RATE, key, velocity)),
        _ => None,
    };
    let inputs = run.inputs.iter().filter_map(|(s, k)| on(*s, k)).collect();
    let outputs = run.events.iter().filter_map(|e| on(e.host_sample, &e.kind)).collect();
    (inputs, outputs)
}

/// Every note of the part played once, LATENCY behind, no longer flat; no pedal left down.
fn performed(run: &Run) -> Outcome {
    let (part, played) = notes_in_and_out(run);
    if part.len() != 40 {
        return Err(format!("the host sent {} notes, not the part's 40", part.len()));
    }
    let mut deviations = Vec::new();
    for key in 0..128u8 {
        let (written, heard): (Vec<_>, Vec<_>) =
            (part.iter().filter(|n| n.1 == key).collect(), played.iter().filter(|n| n.1 == key).collect());
        if written.len() != heard.len() {
            return Err(format!("key {key}: {} in the part, {} played", written.len(), heard.len()));
        }
        deviations.extend(written.iter().zip(&heard).map(|(w, h)| h.0 - w.0 - LATENCY));
    }
    let worst = deviations.iter().fold(0.0f64, |m, d| m.max(d.abs()));
    if worst > MAX_DEVIATION {
        return Err(format!("a note played {worst:.3} s away from LATENCY behind its place in the part"));
    }
    let velocities: std::collections::BTreeSet<u8> = played.iter().map(|n| n.2).collect();
    if velocities.len() < 4 {
        return Err(format!("still flat: velocities {velocities:?}"));
    }
    let pedal: Vec<u8> = run.events.iter().filter_map(|e| if let OutKind::Pedal { value } = e.kind { Some(value) } else { None }).collect();
    // Whether the model pedals a part is its own choice (measured on ASAP by `eval-perform
    // --live`); a pedal it presses must be lifted.
    if pedal.last().is_some_and(|&v| v >= 64) {
        return Err(format!("the pedal was left down: {pedal:?}"));
    }
    Ok(format!(
        "{} notes, deviations within {worst:.3} s of {LATENCY} s, {} velocities ({}..{}), {} pedal presses",
        played.len(),
        velocities.len(),
        velocities.first().unwrap(),
        velocities.last().unwrap(),
        pedal.iter().filter(|&&v| v >= 64).count()
    ))
}

/// `a` plays what `b`, the reference, plays: the same NOTE_ONs at the same samples.
fn same(a: &Result<Run, String>, b: &Result<Run, String>) -> Outcome {
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Err(e.clone()),
    };
    let ((_, a), (_, b)) = (notes_in_and_out(a), notes_in_and_out(b));
    if b.len() < 40 {
        return Err(format!("the reference played {} notes", b.len()));
    }
    match a.iter().zip(&b).position(|(x, y)| x != y) {
        Some(i) => Err(format!("NOTE_ON {i} differs: {:?} vs {:?}", a[i], b[i])),
        None if a.len() != b.len() => Err(format!("{} vs {} NOTE_ONs", a.len(), b.len())),
        None => Ok(format!("{} NOTE_ONs identical", a.len())),
    }
}

/// The latency an activated instance reports: LATENCY with Perform my part on, 0 without.
fn latency(plugin: &Plugin) -> Outcome {
    let reported = |on: &str| -> Result<u32, String> {
        let mut instance = plugin.instance()?;
        crate::tempo::set_params(&mut instance, &[("Perform my part", on)])?;
        let config = PluginAudioConfiguration { sample_rate: RATE, min_frames_count: 1, max_frames_count: 512 };
        let processor = instance.activate(|_, _| (), config).map_err(|e| format!("cannot activate: {e:?}"))?;
        let handle = instance.plugin_handle();
        let latency: PluginLatency = handle.get_extension().ok_or("the plugin has no latency extension")?;
        let samples = latency.get(&handle);
        instance.deactivate(processor);
        Ok(samples)
    };
    let (on, off) = (reported("On")?, reported("Off")?);
    let expected = (LATENCY * RATE).round() as u32;
    if on != expected || off != 0 {
        return Err(format!("{on} samples with Perform my part, {off} without; expected {expected} and 0"));
    }
    Ok(format!("{on} samples ({LATENCY} s at {RATE} Hz) with it, 0 without"))
}
