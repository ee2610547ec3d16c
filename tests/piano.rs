//! The sampled piano: real-time rules (no allocation in `render`), and, with the real samples
//! (`cargo xtask samples`), a rendered C major scale checked for onsets, pitch and loudness.
//!
//! The real-sample tests skip with a message when `target/piano-samples` is missing, unless `CI` is
//! set: then they fail. What the piano costs and how long it loads is measured by
//! `cargo bench --bench piano` (docs/benchmarks.md), not here.

use pianoforte::codec::{Note, PedalChange, Performance};
use pianoforte::piano::{self, Decibels, Piano, Pitch, SampleRate, SampleSet, Stereo, Velocity};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Counts allocations made by the current thread while `COUNTING` is set on it (the test harness
/// runs other tests on other threads at the same time).
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RATE: f32 = 48_000.0;

fn rate() -> SampleRate {
    SampleRate::new(RATE).unwrap()
}

#[test]
fn render_and_events_never_allocate() {
    let mut piano = Piano::new(Arc::new(SampleSet::test_tones(4, 3.0)), rate());
    let (mut left, mut right) = (vec![0.0f32; 512], vec![0.0f32; 512]);
    piano.render(&mut left, &mut right); // nothing lazy should remain, but warm up anyway
    COUNTING.with(|c| c.set(true));
    for block in 0..2_000usize {
        // 100 strikes per block: steals, re-strikes, pedal changes, release noises, a full queue.
        for i in 0..100 {
            let key = Pitch::new(21 + ((block * 31 + i * 7) % 88) as u8).unwrap();
            let _ = piano.note_on((i * 5) as u32, key, Velocity::new(1 + (i * 13 % 127) as u8).unwrap());
            let _ = piano.note_off((i * 5 + 3) as u32, key);
        }
        let _ = piano.pedal(block as u32 % 512, block % 3 != 0);
        if block % 100 == 99 {
            let _ = piano.stop(0);
            piano.set_volume(Decibels::new(-3.0).unwrap());
        }
        for _ in 0..piano::QUEUE {
            if piano.pedal(600, true).is_err() {
                break;
            }
        }
        piano.render(&mut left, &mut right);
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0, "allocations in note_on/note_off/pedal/render");
    assert!(left.iter().chain(&right).all(|x| x.is_finite()));
}

/// The real samples, loaded once; `None` (with a message) when they are missing outside CI.
fn samples() -> Option<Arc<SampleSet>> {
    static SET: OnceLock<Option<Arc<SampleSet>>> = OnceLock::new();
    SET.get_or_init(|| {
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/piano-samples");
        if !folder.is_dir() {
            if std::env::var_os("CI").is_some() {
                panic!("{} is missing and CI is set: run `cargo xtask samples` first", folder.display());
            }
            eprintln!("SKIPPED: {} is missing; run `cargo xtask samples` to test the real piano", folder.display());
            return None;
        }
        Some(Arc::new(SampleSet::load(&folder).unwrap_or_else(|e| panic!("{e}"))))
    })
    .clone()
}

const SCALE: [u8; 8] = [60, 62, 64, 65, 67, 69, 71, 72];
const VELOCITIES: [u8; 3] = [40, 80, 120];
/// Seconds between onsets, and how long each key is held.
const SPACING: f64 = 0.6;
const HOLD: f64 = 0.35;

/// The C major scale C4..C5 three times, at velocities 40, 80 and 120, with the pedal off.
fn scale() -> Performance {
    let mut notes = Vec::new();
    for (pass, &velocity) in VELOCITIES.iter().enumerate() {
        for (i, &pitch) in SCALE.iter().enumerate() {
            let start = 0.1 + SPACING * (pass * SCALE.len() + i) as f64;
            notes.push(Note { pitch, velocity, start, end: start + HOLD });
        }
    }
    let duration = notes.last().unwrap().end + 0.5;
    Performance { notes, pedal: vec![PedalChange { time: 0.0, down: false }], duration }
}

/// Peak envelope in 1 ms windows.
fn envelope(x: &[f32]) -> Vec<f32> {
    x.chunks(48).map(|c| c.iter().fold(0.0f32, |m, v| m.max(v.abs()))).collect()
}

/// The frequency with the strongest Hann-windowed DFT magnitude in [low, high], to 0.01 Hz
/// (a coarse 1 Hz scan, then a fine one around the best bin).
fn spectral_peak(x: &[f32], low: f64, high: f64) -> f64 {
    let n = x.len();
    let windowed: Vec<f64> =
        x.iter().enumerate().map(|(i, &v)| v as f64 * (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos())).collect();
    let magnitude = |f: f64| {
        let w = std::f64::consts::TAU * f / RATE as f64;
        let (mut re, mut im) = (0.0, 0.0);
        for (i, v) in windowed.iter().enumerate() {
            re += v * (w * i as f64).cos();
            im += v * (w * i as f64).sin();
        }
        re * re + im * im
    };
    let best = |from: f64, to: f64, step: f64| {
        let steps = ((to - from) / step) as usize;
        (0..=steps).map(|k| from + k as f64 * step).max_by(|a, b| magnitude(*a).total_cmp(&magnitude(*b))).unwrap()
    };
    let coarse = best(low, high, 1.0);
    best(coarse - 1.0, coarse + 1.0, 0.01)
}

fn frequency(pitch: u8) -> f64 {
    440.0 * 2f64.powf((pitch as f64 - 69.0) / 12.0)
}

fn render_scale(samples: Arc<SampleSet>) -> Stereo {
    let audio = piano::render(&scale(), samples, rate());
    assert_eq!(audio.sample_rate, 48_000);
    assert!(audio.left.iter().chain(&audio.right).all(|x| x.is_finite()));
    assert!(audio.peak() <= 1.0, "peak {}", audio.peak());
    audio
}

#[test]
fn a_c_major_scale_has_its_onsets_pitches_and_dynamics() {
    let Some(samples) = samples() else { return };
    let audio = render_scale(samples);
    let mono: Vec<f32> = audio.left.iter().zip(&audio.right).map(|(l, r)| 0.5 * (l + r)).collect();
    let env = envelope(&mono);
    let mut loudness = [[0.0f32; 3]; 8];
    for (pass, &velocity) in VELOCITIES.iter().enumerate() {
        for (i, &pitch) in SCALE.iter().enumerate() {
            let start = 0.1 + SPACING * (pass * SCALE.len() + i) as f64;
            let ms = (start * 1000.0).round() as usize;
            // Onset: the first millisecond twice (6 dB) as loud as the loudest of the 20 ms before
            // (the previous note's tail and release noise).
            let before = env[ms - 25..ms - 5].iter().fold(0.0f32, |m, &v| m.max(v));
            let onset = (ms - 5..ms + 50).find(|&t| env[t] > 2.0 * before.max(1e-4)).expect("an onset");
            assert!(onset.abs_diff(ms) <= 5, "{pitch} v{velocity}: onset at {onset} ms, expected {ms} ms");

            let from = (start + 0.05) * RATE as f64;
            let segment = &mono[from as usize..(from + 0.25 * RATE as f64) as usize];
            let expected = frequency(pitch);
            let found = spectral_peak(segment, expected * 0.75, expected * 1.33);
            let cents = 1200.0 * (found / expected).log2();
            assert!(cents.abs() < 10.0, "{pitch} v{velocity}: {found:.2} Hz, {cents:.1} cents from {expected:.2} Hz");

            println!("{pitch} v{velocity}: onset {onset} ms (note at {ms} ms), {found:.2} Hz ({cents:+.1} cents)");
            let attack = &mono[(start * RATE as f64) as usize..((start + 0.2) * RATE as f64) as usize];
            loudness[i][pass] = (attack.iter().map(|v| v * v).sum::<f32>() / attack.len() as f32).sqrt();
        }
    }
    for (i, levels) in loudness.iter().enumerate() {
        assert!(levels.windows(2).all(|w| w[1] > w[0] * 1.4), "{}: RMS at velocities 40/80/120 {levels:?}", SCALE[i]);
    }
}

#[test]
fn the_real_piano_renders_deterministically_and_falls_silent() {
    let Some(samples) = samples() else { return };
    let (a, b) = (render_scale(samples.clone()), render_scale(samples));
    assert!(a.left.iter().zip(&b.left).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(a.right.iter().zip(&b.right).all(|(x, y)| x.to_bits() == y.to_bits()));
    // The last note is released 0.5 s before the performance ends; rendering stops at silence.
    let tail = &a.left[a.frames() - 4800..];
    assert!(tail.iter().all(|x| x.abs() < 10f32.powf(-90.0 / 20.0)));
}

/// RMS in dB of the first 200 ms of `key` struck alone at `velocity`, at 0 dB volume.
fn strike_db(samples: &Arc<SampleSet>, key: u8, velocity: u8) -> f32 {
    let mut piano = Piano::new(samples.clone(), rate());
    piano.set_volume(Decibels::new(0.0).unwrap());
    let (mut left, mut right) = (vec![0.0f32; 9600], vec![0.0f32; 9600]);
    piano.note_on(0, Pitch::new(key).unwrap(), Velocity::new(velocity).unwrap()).unwrap();
    piano.render(&mut left, &mut right);
    dbfs((left.iter().chain(&right).map(|x| x * x).sum::<f32>() / 19_200.0).sqrt())
}

#[test]
fn every_key_gets_louder_with_velocity() {
    let Some(samples) = samples() else { return };
    for key in 21..=108u8 {
        let levels: Vec<f32> = (1..=127u8).step_by(6).map(|v| strike_db(&samples, key, v)).collect();
        // 30 dB per decade of velocity: from 1 to 7 that is 25 dB, from 121 to 127 0.6 dB.
        assert!(levels.windows(2).all(|w| w[1] > w[0] + 0.3), "key {key}: dB at velocity 1, 7, 13, ...: {levels:?}");
        assert!((levels[levels.len() - 1] - levels[0] - 30.0 * (121f32).log10()).abs() < 1.5, "key {key}: {levels:?}");
    }
}

/// 16 notes per second at full velocity for `seconds`, in chords of `chord` notes, keys from a
/// fixed pseudo-random walk over `keys`, each held 0.3 s, with the pedal `pedal(t)`.
fn busy(seconds: f64, chord: usize, keys: std::ops::Range<u8>, pedal: impl Fn(f64) -> bool) -> Performance {
    let mut state = 12_345u32;
    let notes: Vec<Note> = (0..(seconds * 16.0) as usize)
        .map(|i| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let start = (i / chord * chord) as f64 / 16.0;
            Note { pitch: keys.start + (state >> 8) as u8 % keys.len() as u8, velocity: 127, start, end: start + 0.3 }
        })
        .collect();
    let mut changes = Vec::new();
    let mut down = false;
    for step in 0..(seconds * 10.0) as usize {
        let t = step as f64 / 10.0;
        if pedal(t) != down {
            down = !down;
            changes.push(PedalChange { time: t, down });
        }
    }
    Performance { notes, pedal: changes, duration: seconds }
}

fn dbfs(x: f32) -> f32 {
    20.0 * x.max(1e-10).log10()
}

/// The default volume is chosen by measurement (`DEFAULT_VOLUME_DB`): 16 notes/s at full
/// velocity peak under full scale in every case tried, yet the loudest comes within 6 dB of it.
#[test]
fn the_default_volume_keeps_16_loud_notes_a_second_under_full_scale() {
    let Some(samples) = samples() else { return };
    type Scenario = (&'static str, usize, std::ops::Range<u8>, fn(f64) -> bool);
    let scenarios: [Scenario; 5] = [
        ("single notes, pedal held", 1, 21..109, |_| true),
        ("single notes, pedal 2 s of 3", 1, 21..109, |t| t % 3.0 < 2.0),
        ("single notes, no pedal", 1, 21..109, |_| false),
        ("4-note chords in C2..C6, pedal held", 4, 36..84, |_| true),
        ("single notes in C2..C6, pedal held", 1, 36..84, |_| true),
    ];
    let mut loudest = f32::MIN;
    for (name, chord, keys, pedal) in scenarios {
        let peak = dbfs(piano::render(&busy(20.0, chord, keys, pedal), samples.clone(), rate()).peak());
        println!("16 notes/s at velocity 127, {name}: peak {peak:.1} dBFS at the default {} dB", piano::DEFAULT_VOLUME_DB);
        assert!(peak < 0.0, "{name}: peak {peak:.1} dBFS");
        loudest = loudest.max(peak);
    }
    assert!(loudest > -6.0, "the loudest case peaks at {loudest:.1} dBFS: the default volume wastes headroom");
}
