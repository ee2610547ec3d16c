//! The voice bank on synthetic tones (no samples needed): decay, pedal, stealing, determinism.

use super::*;
use std::sync::{Arc, OnceLock};

const RATE: f32 = 48_000.0;

fn tones() -> Arc<SampleSet> {
    static SET: OnceLock<Arc<SampleSet>> = OnceLock::new();
    SET.get_or_init(|| Arc::new(SampleSet::test_tones(4, 6.0))).clone()
}

fn piano() -> Piano {
    Piano::new(tones(), SampleRate::new(RATE).unwrap())
}

fn key(k: u8) -> Pitch {
    Pitch::new(k).unwrap()
}

fn vel(v: u8) -> Velocity {
    Velocity::new(v).unwrap()
}

/// Renders `blocks` blocks of 512 frames; `events` runs before each block with its index.
fn run(piano: &mut Piano, blocks: usize, mut events: impl FnMut(&mut Piano, usize)) -> (Vec<f32>, Vec<f32>) {
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let (mut l, mut r) = ([0.0; 512], [0.0; 512]);
    for block in 0..blocks {
        events(piano, block);
        piano.render(&mut l, &mut r);
        left.extend_from_slice(&l);
        right.extend_from_slice(&r);
    }
    (left, right)
}

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
}

const BLOCKS_PER_SECOND: usize = 94; // 48000 / 512, rounded up

#[test]
fn newtypes_reject_invalid_values() {
    assert!(Pitch::new(20).is_none() && Pitch::new(109).is_none() && Pitch::new(60).is_some());
    assert!(Velocity::new(0).is_none() && Velocity::new(128).is_none() && Velocity::new(1).is_some());
    assert!(Decibels::new(f32::NAN).is_none() && Decibels::new(30.0).is_none());
    assert_eq!(Decibels::new(-200.0).unwrap().gain(), 0.0);
    assert!(SampleRate::new(0.0).is_none() && SampleRate::new(f32::INFINITY).is_none());
}

#[test]
fn a_released_note_decays_below_minus_90_dbfs_within_two_seconds() {
    let mut p = piano();
    let (left, right) = run(&mut p, 4 * BLOCKS_PER_SECOND, |p, b| {
        if b == 0 {
            for k in [21, 40, 60, 80, 89] {
                p.note_on(0, key(k), vel(127)).unwrap();
            }
        }
        if b == BLOCKS_PER_SECOND {
            for k in [21, 40, 60, 80, 89] {
                p.note_off(0, key(k)).unwrap();
            }
        }
    });
    let second = 48_000;
    assert!(peak(&left[..second]) > 0.05, "the notes sound");
    let after = 3 * second; // two seconds after the release
    let tail = peak(&left[after..]).max(peak(&right[after..]));
    assert!(tail < 10f32.powf(-90.0 / 20.0), "tail peak {tail}");
    assert_eq!(p.active_voices(), 0);
    assert!(left.iter().chain(&right).all(|x| x.is_finite()));
}

#[test]
fn the_pedal_holds_released_keys_until_it_is_lifted() {
    let mut p = piano();
    let (left, _) = run(&mut p, 3 * BLOCKS_PER_SECOND, |p, b| match b {
        0 => {
            p.pedal(0, true).unwrap();
            p.note_on(10, key(48), vel(90)).unwrap();
            p.note_off(4800, key(48)).unwrap(); // released after 0.1 s, pedal down
        }
        b if b == 2 * BLOCKS_PER_SECOND => p.pedal(0, false).unwrap(),
        _ => {}
    });
    let window = |s: f32| rms(&left[(s * RATE) as usize..((s + 0.1) * RATE) as usize]);
    // Still ringing 1.5 s on (the tone's own decay only, about 11 dB for this key).
    assert!(window(1.5) > window(0.2) * 0.2, "{} vs {}", window(1.5), window(0.2));
    // Lifted at ~2.04 s: the damper takes it down fast.
    let end = 3 * BLOCKS_PER_SECOND * 512 - 4800;
    assert!(peak(&left[end..]) < 1e-4);

    // Without the pedal the same release is damped at once.
    let mut q = piano();
    let (dry, _) = run(&mut q, BLOCKS_PER_SECOND * 2, |p, b| {
        if b == 0 {
            p.note_on(10, key(48), vel(90)).unwrap();
            p.note_off(4800, key(48)).unwrap();
        }
    });
    assert!(rms(&dry[(1.5 * RATE) as usize..(1.6 * RATE) as usize]) < window(1.5) * 1e-3);
}

#[test]
fn the_pedal_pressed_after_a_release_catches_what_still_rings() {
    let play = |pedal: bool| {
        let mut p = piano();
        run(&mut p, 2 * BLOCKS_PER_SECOND, |p, b| {
            if b == 0 {
                p.note_on(0, key(48), vel(90)).unwrap();
                p.note_off(4800, key(48)).unwrap(); // damped at 0.1 s
            }
            if b == 10 && pedal {
                p.pedal(0, true).unwrap(); // 0.107 s: the damper has taken ~0.3 dB
            }
        })
        .0
    };
    let (caught, dry) = (play(true), play(false));
    let window = |x: &[f32]| rms(&x[(1.5 * RATE) as usize..(1.6 * RATE) as usize]);
    assert!(window(&caught) > 1e-3 && window(&dry) < 1e-6, "{} vs {}", window(&caught), window(&dry));
}

#[test]
fn a_held_key_struck_again_retriggers_with_the_old_voice_fading() {
    let mut p = piano();
    run(&mut p, 10, |p, b| {
        if b == 0 {
            p.pedal(0, true).unwrap();
            p.note_on(0, key(60), vel(80)).unwrap();
            p.note_off(100, key(60)).unwrap();
            p.note_on(2000, key(60), vel(80)).unwrap();
        }
    });
    // The first voice faded out within 60 ms; the new one (and the first one's tail) are gone or ringing.
    assert_eq!(p.strings(), 1);
    assert_eq!(p.active_voices(), 1);
}

#[test]
fn more_than_64_notes_steal_the_oldest_with_a_fade_not_a_click() {
    // Scenario A: A0 first, then 64 more keys held: A0 is stolen. Scenario B: the same without A0.
    // Rendering is linear, so A - B is A0's voice alone: its end must be a fade.
    let render = |with_victim: bool| {
        let mut p = piano();
        let out = run(&mut p, 40, |p, b| {
            if b == 0 && with_victim {
                p.note_on(0, key(21), vel(127)).unwrap();
            }
            if b == 4 {
                for k in 22..22 + 64u8 {
                    p.note_on(0, key(k), vel(60)).unwrap();
                }
            }
        });
        (out, p.strings())
    };
    let ((a, _), strings) = render(true);
    let ((b, _), _) = render(false);
    assert_eq!(strings, POLYPHONY);
    let victim: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
    let steal = 4 * 512;
    let jump = |x: &[f32]| x.windows(2).fold(0.0f32, |m, w| m.max((w[1] - w[0]).abs()));
    let before = jump(&victim[512..steal]);
    let during = jump(&victim[steal - 1..steal + 2000]);
    let level = peak(&victim[steal - 512..steal]);
    assert!(level > 0.05, "the victim sounds before the steal: {level}");
    // A cut would jump by about `level`; the fade adds at most level/384 per frame.
    assert!(during < before + level / 100.0, "jump {during} vs {before} before (level {level})");
    assert!(peak(&victim[steal + 400..]) < 1e-4, "gone after the fade");
}

#[test]
fn the_same_events_give_bit_identical_audio() {
    let play = || {
        let mut p = piano();
        run(&mut p, 200, |p, b| {
            let k = 21 + (b * 7 % 88) as u8;
            p.note_on((b * 37 % 512) as u32, key(k), vel(1 + (b * 13 % 127) as u8)).unwrap();
            p.pedal(300, b % 20 < 12).unwrap();
            if b >= 3 {
                p.note_off(100, key(21 + ((b - 3) * 7 % 88) as u8)).unwrap();
            }
        })
    };
    let (a, b) = (play(), play());
    assert!(a.0.iter().zip(&b.0).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(a.1.iter().zip(&b.1).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(peak(&a.0) > 0.01);
}

/// The same events at the same absolute frames, rendered in blocks of `frames`.
fn render_in_blocks(frames: usize, seconds: usize) -> Vec<f32> {
    let mut p = piano();
    let total = seconds * RATE as usize;
    let (mut out, mut l, mut r) = (Vec::new(), vec![0.0; frames], vec![0.0; frames]);
    let mut start = 0;
    while start < total {
        // An event every 2400 frames: a note, its release 9600 frames later, the pedal now and then.
        for at in (start..start + frames).filter(|at| at % 2400 == 0) {
            let (i, timing) = (at / 2400, (at - start) as u32);
            p.note_on(timing, key(21 + (i * 11 % 88) as u8), vel(1 + (i * 29 % 127) as u8)).unwrap();
            if i >= 4 {
                p.note_off(timing, key(21 + ((i - 4) * 11 % 88) as u8)).unwrap();
            }
            p.pedal(timing, i % 10 < 4).unwrap();
        }
        p.render(&mut l, &mut r);
        out.extend(l.iter().zip(&r).flat_map(|(a, b)| [*a, *b]));
        start += frames;
    }
    out.truncate(2 * total);
    out
}

#[test]
fn the_block_size_does_not_change_a_single_bit() {
    let reference = render_in_blocks(512, 6);
    assert!(peak(&reference) > 0.01);
    for frames in [1, 64, 100, 1024] {
        let other = render_in_blocks(frames, 6);
        let first = reference.iter().zip(&other).position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(first, None, "blocks of {frames} differ from blocks of 512 from value {first:?} on");
    }
}

#[test]
fn events_land_on_their_sample_offset() {
    let mut p = piano();
    let (left, _) = run(&mut p, 2, |p, b| {
        if b == 1 {
            p.note_on(300, key(69), vel(100)).unwrap();
        }
    });
    let first = left.iter().position(|x| x.abs() > 1e-6).unwrap();
    // The interpolator reads one frame ahead, so sound can start at the frame of the event.
    assert!((512 + 300..=512 + 302).contains(&first), "first sound at {first}");
}

#[test]
fn velocity_makes_it_louder_and_stays_finite() {
    let loudness = |v: u8| {
        let mut p = piano();
        let (left, right) = run(&mut p, 20, |p, b| {
            if b == 0 {
                p.note_on(0, key(60), vel(v)).unwrap();
            }
        });
        assert!(left.iter().chain(&right).all(|x| x.is_finite()));
        rms(&left[..4800])
    };
    let levels: Vec<f32> = [1, 10, 20, 40, 60, 80, 100, 120, 127].map(loudness).to_vec();
    assert!(levels.windows(2).all(|w| w[1] > w[0]), "{levels:?}");
}

#[test]
fn a_full_queue_is_reported_not_grown() {
    let mut p = piano();
    for i in 0..QUEUE {
        p.pedal(i as u32 % 512, i % 2 == 0).unwrap();
    }
    assert_eq!(p.pedal(0, true), Err(QueueFull));
}

#[test]
fn offline_render_is_sample_exact_and_ends_in_silence() {
    use crate::codec::{Note, Performance};
    let performance = Performance {
        notes: vec![Note { pitch: 60, velocity: 90, start: 0.25, end: 0.75 }, Note { pitch: 10, velocity: 90, start: 0.0, end: 1.0 }],
        pedal: vec![],
        duration: 1.0,
    };
    let audio = render(&performance, tones(), SampleRate::new(RATE).unwrap());
    let first = audio.left.iter().position(|x| x.abs() > 1e-6).unwrap();
    assert!((12_000..=12_002).contains(&first), "onset at {first}");
    assert!(audio.frames() > 48_000 && audio.frames() < 5 * 48_000, "{} frames", audio.frames());
    assert_eq!(*audio.left.last().unwrap(), 0.0);
}

#[test]
fn wav_header_is_float_stereo() {
    let audio = Stereo { sample_rate: 44_100, left: vec![0.5, -0.25], right: vec![1.0, 0.0] };
    let mut bytes = Vec::new();
    write_wav(&mut bytes, &audio).unwrap();
    assert_eq!(bytes.len(), 58 + 16);
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize, bytes.len() - 8);
    assert_eq!(u16::from_le_bytes([bytes[20], bytes[21]]), 3);
    assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 44_100);
    assert_eq!(f32::from_le_bytes(bytes[58..62].try_into().unwrap()), 0.5);
    assert_eq!(f32::from_le_bytes(bytes[62..66].try_into().unwrap()), 1.0);
}

#[test]
fn missing_and_corrupt_samples_are_errors_in_words() {
    let dir = std::env::temp_dir().join(format!("pianoforte-piano-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let error = SampleSet::load(&dir).err().unwrap();
    assert!(matches!(&error, LoadError::Missing { files, .. } if files.len() == layout::all_files().len()));
    assert!(error.to_string().contains("cargo xtask samples"), "{error}");
    for name in layout::all_files() {
        std::fs::write(dir.join(name), b"OggS but not really").unwrap();
    }
    let error = SampleSet::load(&dir).err().unwrap();
    assert!(matches!(error, LoadError::Unusable { .. }), "{error}");
    assert!(error.to_string().contains("unusable"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
