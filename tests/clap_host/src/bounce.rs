//! `--suite bounce` (issue 18): the built-in piano plays whatever the host does with MIDI out; a
//! host that renders faster than real time without declaring offline gets the offline bounce,
//! bit for bit, at any block size, however early after the activation it starts.

use crate::host::{OutKind, Plugin};
use crate::render::{RATE, Render, Rendered, Start, render};
use std::path::Path;

type Outcome = Result<String, String>;

/// Every check of the suite, by name.
pub fn checks(plugin: &Plugin, trace_dir: &Path) -> Vec<(String, Outcome)> {
    let run = |r: Render| render(plugin, &r, trace_dir);
    let mut outcomes = vec![
        (
            "the host refuses all MIDI out (transport, offline): the piano still plays".to_string(),
            run(Render { refuse_midi: true, ..Render::fast(512, 6.0).offline() }).and_then(|r| refused_yet_sounding(&r)),
        ),
        (
            "the host refuses all MIDI out (Play switch, no transport, real time): the piano still plays".to_string(),
            run(Render { refuse_midi: true, start: Start::PlaySwitch, speed: Some(1.0), ..Render::fast(512, 5.0).after_loading() })
                .and_then(|r| refused_yet_sounding(&r)),
        ),
    ];
    // The same 8 s take (seed, start at song position 0, parameters), rendered four ways.
    let fast = run(Render::fast(512, 8.0));
    let fast_64 = run(Render::fast(64, 8.0));
    let offline = run(Render::fast(512, 8.0).offline());
    let loaded = run(Render::fast(512, 8.0).offline().after_loading());
    let fast_sounds = fast.as_ref().map_err(Clone::clone).and_then(sounding).map(|s| format!("{s}; {}", wall(&fast)));
    outcomes.extend([
        ("faster than real time, not declared offline, from the activation on: the piano plays".to_string(), fast_sounds),
        (
            "faster than real time, not declared offline = declared offline (512-sample blocks): bit-identical".to_string(),
            compare(&fast, &offline),
        ),
        ("faster than real time, not declared offline: 64- and 512-sample blocks bit-identical".to_string(), compare(&fast_64, &fast)),
        ("an offline bounce begun while loading = one begun after loading: bit-identical".to_string(), compare(&offline, &loaded)),
        (
            "faster than real time (not declared) begun while loading = offline begun after loading: bit-identical".to_string(),
            compare(&fast, &loaded),
        ),
    ]);
    outcomes
}

fn wall(r: &Result<Rendered, String>) -> String {
    r.as_ref().map_or_else(|_| String::new(), |r| format!("rendered in {:.1} s", r.wall_seconds))
}

/// The plugin offered MIDI that the host refused, and the piano sounds all the same.
fn refused_yet_sounding(r: &Rendered) -> Outcome {
    if !r.midi.is_empty() {
        return Err(format!("the host took {} events though it refuses every one", r.midi.len()));
    }
    if r.refused == 0 {
        return Err("the plugin offered no MIDI at all (nothing was refused): the check tests nothing".into());
    }
    sounding(r).map(|s| format!("{} events refused; {s}", r.refused))
}

/// Mean power of both channels over samples `from..to`, in dBFS.
fn level(audio: &[Vec<f32>; 2], from: usize, to: usize) -> f64 {
    let sum: f64 = audio.iter().flat_map(|c| &c[from..to]).map(|&x| (x as f64).powi(2)).sum();
    10.0 * (sum / (2 * (to - from).max(1)) as f64).max(1e-30).log10()
}

/// Sounding: every sample finite, and at least 80% of the 100 ms windows after the first second
/// above -50 dBFS.
pub fn sounding(r: &Rendered) -> Outcome {
    if let Some(bad) = r.audio.iter().flatten().find(|x| !x.is_finite()) {
        return Err(format!("a sample is {bad}"));
    }
    let window = (RATE * 0.1) as usize;
    let windows = r.audio[0].len() / window;
    let levels: Vec<f64> = (10..windows).map(|w| level(&r.audio, w * window, (w + 1) * window)).collect();
    if levels.is_empty() {
        return Err(format!("only {} samples rendered", r.audio[0].len()));
    }
    let loud = levels.iter().filter(|&&db| db > -50.0).count();
    let mut sorted = levels.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let summary = format!("{loud} of {} 100 ms windows after the first second above -50 dBFS (median {median:.1} dBFS)", levels.len());
    if loud * 10 < levels.len() * 8 { Err(summary) } else { Ok(summary) }
}

/// `a` and `b` are the same take: the audio bit for bit and the MIDI out event for event; `b`,
/// the reference, sounds (two silent renders prove nothing).
fn compare(a: &Result<Rendered, String>, b: &Result<Rendered, String>) -> Outcome {
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Err(e.clone()),
    };
    sounding(b).map_err(|e| format!("the reference render does not sound: {e}"))?;
    if let Some(at) = first_audio_difference(a, b) {
        return Err(format!(
            "the audio differs from sample {at} ({:.3} s) on; {} vs {} NOTE_ONs out; level of the first second {:.1} vs {:.1} dBFS",
            at as f64 / RATE,
            a.notes(),
            b.notes(),
            level(&a.audio, 0, a.audio[0].len().min(RATE as usize)),
            level(&b.audio, 0, b.audio[0].len().min(RATE as usize)),
        ));
    }
    if let Some(difference) = first_midi_difference(&a.midi, &b.midi) {
        return Err(format!("same audio, but the MIDI out differs: {difference}"));
    }
    Ok(format!("{} samples and {} NOTE_ONs identical", a.audio[0].len(), a.notes()))
}

/// The first sample (of either channel) where the two renders differ, bit for bit.
fn first_audio_difference(a: &Rendered, b: &Rendered) -> Option<usize> {
    let differs = |(x, y): (&f32, &f32)| x.to_bits() != y.to_bits();
    let at = (0..2).filter_map(|c| a.audio[c].iter().zip(&b.audio[c]).position(differs)).min();
    let (la, lb) = (a.audio[0].len(), b.audio[0].len());
    at.or((la != lb).then_some(la.min(lb)))
}

fn first_midi_difference(a: &[(u64, u8, OutKind)], b: &[(u64, u8, OutKind)]) -> Option<String> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(format!("event {i}: {:?} vs {:?}", a[i], b[i])),
        None if a.len() != b.len() => Some(format!("{} vs {} events", a.len(), b.len())),
        None => None,
    }
}
