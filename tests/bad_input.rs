//! Bad input never stops the dataset builder: a corpus of broken files, generated here in a
//! temporary folder (no binary fixtures in the repository), is read by `midi::read` and by
//! the real `pianoforte` binary. Every file must be refused with the right reason (or read with
//! sensible content when it is only odd), skipped with a one-line reason, and never panic.
//!
//! Needs `../shared/data/maestro-v2.0.0` next to the repository for the real performances.

use midly::{Format, Fps, Header, MetaMessage, MidiMessage, Timing, TrackEvent, TrackEventKind};
use pianoforte::cli::dataset::{Document, Manifest};
use pianoforte::codec;
use pianoforte::codec::midi::{self, MidiError, ReadPerformance};
use proptest::prelude::*;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Building files

fn midi(delta: u32, message: MidiMessage) -> TrackEvent<'static> {
    TrackEvent { delta: delta.into(), kind: TrackEventKind::Midi { channel: 0.into(), message } }
}
fn on(delta: u32, key: u8, vel: u8) -> TrackEvent<'static> {
    midi(delta, MidiMessage::NoteOn { key: key.into(), vel: vel.into() })
}
fn off(delta: u32, key: u8) -> TrackEvent<'static> {
    midi(delta, MidiMessage::NoteOff { key: key.into(), vel: 0.into() })
}
fn meta(delta: u32, message: MetaMessage<'static>) -> TrackEvent<'static> {
    TrackEvent { delta: delta.into(), kind: TrackEventKind::Meta(message) }
}
fn tempo(delta: u32, us_per_beat: u32) -> TrackEvent<'static> {
    meta(delta, MetaMessage::Tempo(us_per_beat.into()))
}
fn eot(delta: u32) -> TrackEvent<'static> {
    meta(delta, MetaMessage::EndOfTrack)
}

fn smf(format: Format, timing: Timing, tracks: &[Vec<TrackEvent<'static>>]) -> Vec<u8> {
    let mut bytes = Vec::new();
    midly::write_std(&Header::new(format, timing), tracks.iter(), &mut bytes).unwrap();
    bytes
}
fn single(tpb: u16, events: Vec<TrackEvent<'static>>) -> Vec<u8> {
    smf(Format::SingleTrack, Timing::Metrical(tpb.into()), &[events])
}
/// Two notes, 60 and 64, and the end of the track: a small valid performance body.
fn two_notes() -> Vec<TrackEvent<'static>> {
    vec![on(0, 60, 80), on(240, 64, 70), off(240, 60), off(0, 64), eot(0)]
}

/// A raw `MThd` chunk.
fn mthd(format: u16, tracks: u16, division: u16) -> Vec<u8> {
    let mut b = b"MThd\0\0\0\x06".to_vec();
    for v in [format, tracks, division] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b
}
/// A raw `MTrk` chunk whose length field says `claimed` (the real length when `None`).
fn mtrk(body: &[u8], claimed: Option<u32>) -> Vec<u8> {
    let mut b = b"MTrk".to_vec();
    b.extend_from_slice(&claimed.unwrap_or(body.len() as u32).to_be_bytes());
    b.extend_from_slice(body);
    b
}
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
/// A standard MIDI file wrapped in a RIFF `RMID` container.
fn riff(smf: &[u8]) -> Vec<u8> {
    let size = |n: usize| (n as u32).to_le_bytes();
    cat(&[b"RIFF", &size(smf.len() + 12), b"RMIDdata", &size(smf.len()), smf])
}

/// Deterministic noise (xorshift64*), so failures reproduce.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn maestro_2004() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/maestro-v2.0.0/2004");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (this test needs ../shared)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "midi"))
        .collect();
    // The smallest first: quick to read, and the order is stable.
    files.sort_by_key(|p| (std::fs::metadata(p).unwrap().len(), p.clone()));
    assert!(files.len() >= 3, "expected MAESTRO 2004 files in {}", dir.display());
    files
}

// ---------------------------------------------------------------------------------------------
// The corpus

type Check = fn(&Result<ReadPerformance, MidiError>) -> bool;

/// One generated file: what `midi::read` must say, and why the dataset builder skips it
/// (`None`: it is usable and must end up in a split).
struct Case {
    name: String,
    bytes: Vec<u8>,
    expect: &'static str,
    read: Check,
    skip: Option<&'static str>,
}

fn case(name: impl Into<String>, bytes: Vec<u8>, expect: &'static str, read: Check, skip: Option<&'static str>) -> Case {
    Case { name: name.into(), bytes, expect, read, skip }
}

fn no_notes(r: &Result<ReadPerformance, MidiError>) -> bool {
    r.as_ref().is_ok_and(|r| r.performance.notes.is_empty() && r.dropped_out_of_range == 0)
}
fn truncated(r: &Result<ReadPerformance, MidiError>) -> bool {
    matches!(r, Err(MidiError::Truncated(_)))
}
fn parse_error(r: &Result<ReadPerformance, MidiError>) -> bool {
    matches!(r, Err(MidiError::Parse(_)))
}
fn notes_60_64(r: &Result<ReadPerformance, MidiError>) -> bool {
    r.as_ref().is_ok_and(|r| {
        let pitches: Vec<u8> = r.performance.notes.iter().map(|n| n.pitch).collect();
        pitches == [60, 64] && r.performance.notes.iter().all(|n| n.start >= 0.0 && n.end >= n.start)
    })
}

/// Files every reader must refuse or find empty: the dataset builder skips them all.
fn bad_cases() -> Vec<Case> {
    let tpb480 = Timing::Metrical(480.into());
    let notes = two_notes();
    let mut cases = vec![
        case("empty.mid", vec![], "Empty", |r| matches!(r, Err(MidiError::Empty)), Some("empty file")),
        case(
            "text.mid",
            b"This is a README, renamed.\nNot a MIDI file at all.\n".to_vec(),
            "Parse",
            parse_error,
            Some("not a readable MIDI file"),
        ),
        case("upper-case-extension.MIDI", b"MIDI? no".to_vec(), "Parse", parse_error, Some("not a readable MIDI file")),
        case("random.mid", noise(4096, 1), "Parse", parse_error, Some("not a readable MIDI file")),
        case("riff-garbage.mid", cat(&[b"RIFF", &noise(64, 2)]), "Parse", parse_error, Some("not a readable MIDI file")),
        // A valid header, then a track of noise: midly stops at the first impossible event.
        case(
            "random-track.mid",
            cat(&[&mthd(0, 1, 480), &mtrk(&noise(2048, 3), None)]),
            "Truncated",
            truncated,
            Some("truncated or corrupt"),
        ),
        case("header-only.mid", mthd(0, 1, 480), "Truncated", truncated, Some("announces 1 tracks, the file holds 0")),
        case(
            "header-length-0.mid",
            cat(&[b"MThd\0\0\0\0", &mtrk(&[0, 0xFF, 0x2F, 0], None)]),
            "Parse",
            parse_error,
            Some("not a readable MIDI file"),
        ),
        case(
            "missing-second-track.mid",
            cat(&[&mthd(1, 2, 480), &single(480, two_notes())[14..]]),
            "Truncated",
            truncated,
            Some("announces 2 tracks, the file holds 1"),
        ),
        // The track claims 4 bytes, but its events (and end of track) run on: cut short.
        case(
            "track-length-too-short.mid",
            cat(&[&mthd(0, 1, 480), &mtrk(&[0, 0x90, 60, 64, 0x60, 0x80, 60, 0, 0, 0xFF, 0x2F, 0], Some(4))]),
            "Truncated",
            truncated,
            Some("no end-of-track event"),
        ),
        // A huge length claim over a few bytes of events that stop without an end of track.
        case(
            "track-length-huge-claim.mid",
            cat(&[&mthd(0, 1, 480), &mtrk(&[0, 0x90, 60, 64, 0x60, 0x80, 60, 0], Some(u32::MAX))]),
            "Truncated",
            truncated,
            Some("no end-of-track event"),
        ),
        case(
            "format-2.mid",
            smf(Format::Sequential, tpb480, &[notes.clone(), notes.clone()]),
            "Format2",
            |r| matches!(r, Err(MidiError::Format2)),
            Some("format-2"),
        ),
        case(
            "out-of-range-notes-only.mid",
            single(480, vec![on(0, 0, 64), on(0, 20, 64), on(0, 109, 64), on(0, 127, 64), off(100, 0), off(0, 20), off(0, 109), eot(0)]),
            "Ok, no notes, 4 dropped",
            |r| r.as_ref().is_ok_and(|r| r.performance.notes.is_empty() && r.dropped_out_of_range == 4),
            Some("no notes in the piano range (4 outside it)"),
        ),
        case(
            "no-notes.mid",
            single(480, vec![tempo(0, 400_000), midi(10, MidiMessage::Controller { controller: 64.into(), value: 127.into() }), eot(1000)]),
            "Ok without notes",
            |r| r.as_ref().is_ok_and(|r| r.performance.notes.is_empty() && r.performance.pedal.len() == 1),
            Some("no notes"),
        ),
        case("only-end-of-track.mid", single(480, vec![eot(0)]), "Ok without notes", no_notes, Some("no notes")),
        case(
            "velocity-0-only.mid",
            single(480, vec![on(0, 60, 0), on(10, 62, 0), on(10, 60, 0), eot(0)]),
            "Ok without notes",
            no_notes,
            Some("no notes"),
        ),
        case(
            "zero-tempo.mid",
            single(480, [vec![tempo(0, 0)], notes.clone()].concat()),
            "ZeroTempo",
            |r| matches!(r, Err(MidiError::ZeroTempo)),
            Some("tempo of zero"),
        ),
        case(
            "zero-tempo-in-another-track.mid",
            smf(Format::Parallel, tpb480, &[vec![tempo(0, 500_000), tempo(960, 0), eot(0)], notes.clone()]),
            "ZeroTempo",
            |r| matches!(r, Err(MidiError::ZeroTempo)),
            Some("tempo of zero"),
        ),
        // 16.8 s per beat, and a note held for 2^28 - 1 ticks: about 2600 hours.
        case(
            "absurd-tempo.mid",
            single(480, vec![tempo(0, 0xFF_FFFF), on(0, 60, 64), off(0x0FFF_FFFF, 60), eot(0)]),
            "AbsurdDuration",
            |r| matches!(r, Err(MidiError::AbsurdDuration(s)) if *s > midi::MAX_DURATION_SECONDS),
            Some("absurd duration"),
        ),
        // Default tempo, but an end of track a million beats later (139 hours).
        case(
            "absurd-end-of-track.mid",
            single(1, vec![on(0, 60, 64), off(1, 60), eot(1_000_000)]),
            "AbsurdDuration",
            |r| matches!(r, Err(MidiError::AbsurdDuration(_))),
            Some("absurd duration"),
        ),
        case(
            "zero-ticks-per-beat.mid",
            single(0, two_notes()),
            "ZeroTicksPerBeat",
            |r| matches!(r, Err(MidiError::ZeroTicksPerBeat)),
            Some("zero ticks per beat"),
        ),
        // SMPTE division with -32 frames per second: no such frame rate.
        case(
            "smpte-bad-fps.mid",
            cat(&[&mthd(0, 1, 0xE028), &mtrk(&[0, 0xFF, 0x2F, 0], None)]),
            "Parse",
            parse_error,
            Some("not a readable MIDI file"),
        ),
        // -128 frames per second: midly 0.5 negates the byte as an i8 and panicked here (found
        // by the proptest below), plain and wrapped in RIFF.
        case(
            "smpte-minus-128-fps.mid",
            cat(&[&mthd(0, 1, 0x8000), &mtrk(&[0, 0xFF, 0x2F, 0], None)]),
            "Parse",
            parse_error,
            Some("-128 frames per second"),
        ),
        case("smpte-minus-128-fps-header-only.mid", mthd(0, 0, 0x8019), "Parse", parse_error, Some("-128 frames per second")),
        case(
            "smpte-minus-128-fps-riff.mid",
            riff(&cat(&[&mthd(0, 1, 0x8000), &mtrk(&[0, 0xFF, 0x2F, 0], None)])),
            "Parse",
            parse_error,
            Some("-128 frames per second"),
        ),
        // Running status with no status before it.
        case(
            "running-status-without-status.mid",
            cat(&[&mthd(0, 1, 480), &mtrk(&[0, 60, 64, 0x60, 62, 64, 0, 0xFF, 0x2F, 0], None)]),
            "Truncated",
            truncated,
            Some("unreadable event in track 1"),
        ),
        // A meta event cancels running status; data bytes after it have no status.
        case(
            "running-status-after-meta.mid",
            cat(&[&mthd(0, 1, 480), &mtrk(&[0, 0x90, 60, 64, 0, 0xFF, 0x01, 1, b'x', 0x60, 60, 0, 0, 0xFF, 0x2F, 0], None)]),
            "Truncated",
            truncated,
            Some("unreadable event in track 1"),
        ),
        // A meta event that claims more bytes than the track holds.
        case(
            "meta-length-past-end.mid",
            cat(&[&mthd(0, 1, 480), &mtrk(&[0, 0x90, 60, 64, 0, 0xFF, 0x01, 0x7F, b'x', 0, 0xFF, 0x2F, 0], None)]),
            "Truncated",
            truncated,
            Some("truncated or corrupt"),
        ),
        // System common messages (0xF1..=0xF6) cannot appear in a file.
        case(
            "system-common-event.mid",
            cat(&[&mthd(0, 1, 480), &mtrk(&[0, 0x90, 60, 64, 0, 0xF2, 1, 2, 0, 0xFF, 0x2F, 0], None)]),
            "Truncated",
            truncated,
            Some("unreadable event in track 1"),
        ),
        // A delta time whose variable-length number never ends.
        case(
            "endless-delta.mid",
            cat(&[&mthd(0, 1, 480), &mtrk(&[0, 0x90, 60, 64, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x80, 60, 0, 0, 0xFF, 0x2F, 0], None)]),
            "Truncated",
            truncated,
            Some("truncated or corrupt"),
        ),
    ];

    // A real performance cut at several points: inside the header, at chunk boundaries, inside
    // the first track, in the middle of the notes and inside the final end-of-track event
    // (`01 FF 2F 00`; only the very last byte, its length, may go: see the prefix test).
    let real = std::fs::read(&maestro_2004()[0]).unwrap();
    let n = real.len();
    for cut in [4, 10, 14, 22, 14 + 8 + 0x13, 14 + 8 + 0x13 + 8, 1000, n / 2, n - 4, n - 3, n - 2] {
        let (expect, read, skip): (_, Check, _) =
            if cut < 14 { ("Parse", parse_error, "not a readable MIDI file") } else { ("Truncated", truncated, "truncated or corrupt") };
        cases.push(case(format!("maestro-cut-at-{cut}.mid"), real[..cut].to_vec(), expect, read, Some(skip)));
    }
    cases
}

/// Odd but valid files: read with sensible content, and usable by the dataset builder.
fn edge_cases() -> Vec<Case> {
    let valid_track = [0, 0x90, 60, 80, 0x83, 0x60, 64, 70, 0x83, 0x60, 60, 0, 0, 64, 0, 0, 0xFF, 0x2F, 0];
    let smpte = smf(
        Format::SingleTrack,
        Timing::Timecode(Fps::Fps25, 40),
        &[vec![on(1000, 60, 64), on(0, 64, 64), off(500, 60), off(0, 64), eot(0)]],
    );
    vec![
        // Running status: one 0x90 for a note-on, a second note-on and two note-offs (velocity 0).
        case(
            "running-status.mid",
            cat(&[&mthd(0, 1, 480), &mtrk(&[0, 0x90, 60, 64, 0x60, 64, 64, 0x60, 60, 0, 0, 64, 0, 0, 0xFF, 0x2F, 0], None)]),
            "Ok: 60 and 64",
            |r| {
                notes_60_64(r) && {
                    let n = &r.as_ref().unwrap().performance.notes;
                    // 96 ticks at 480 PPQ and 120 BPM are 0.1 s.
                    (n[0].end - 0.2).abs() < 1e-9 && (n[1].start - 0.1).abs() < 1e-9 && (n[1].end - 0.2).abs() < 1e-9
                }
            },
            None,
        ),
        case(
            "smpte-25fps.mid",
            smpte,
            "Ok: 60 and 64 at 1.0..1.5 s",
            |r| {
                notes_60_64(r)
                    && r.as_ref().unwrap().performance.notes.iter().all(|n| (n.start - 1.0).abs() < 1e-9 && (n.end - 1.5).abs() < 1e-9)
            },
            None,
        ),
        // A complete track whose length field claims more than the file holds (a sloppy writer:
        // nothing is missing, the end of track is there).
        case(
            "track-length-overclaim.mid",
            cat(&[&mthd(0, 1, 480), &mtrk(&valid_track, Some(1 << 24))]),
            "Ok: 60 and 64",
            notes_60_64,
            None,
        ),
        // Padding after the end-of-track event inside the chunk is ignored.
        case(
            "padding-after-end-of-track.mid",
            cat(&[&mthd(0, 1, 480), &mtrk(&[&valid_track[..], &[0xF1, 0xF2, 0, 0, 0, 0]].concat(), None)]),
            "Ok: 60 and 64",
            notes_60_64,
            None,
        ),
        // An unknown chunk between the header and the track is skipped.
        case(
            "unknown-chunk.mid",
            cat(&[&mthd(0, 1, 480), b"XFIH\0\0\0\x03abc", &mtrk(&valid_track, None)]),
            "Ok: 60 and 64",
            notes_60_64,
            None,
        ),
        case("riff-wrapped.mid", riff(&single(480, two_notes())), "Ok: 60 and 64", notes_60_64, None),
        // The slowest tempo there is, for a beat: 16.8 s, far from absurd.
        case(
            "slowest-tempo.mid",
            single(480, vec![tempo(0, 0xFF_FFFF), on(0, 60, 64), on(0, 64, 64), off(480, 60), off(0, 64), eot(0)]),
            "Ok: 60 and 64 lasting 16.8 s",
            |r| notes_60_64(r) && (r.as_ref().unwrap().performance.duration - 16.777215).abs() < 1e-6,
            None,
        ),
        // Out-of-range notes next to real ones are dropped and counted.
        case(
            "some-notes-out-of-range.mid",
            single(480, vec![on(0, 60, 64), on(0, 64, 64), on(0, 10, 64), off(100, 60), off(0, 64), off(0, 10), eot(0)]),
            "Ok: 60 and 64, 1 dropped",
            |r| notes_60_64(r) && r.as_ref().unwrap().dropped_out_of_range == 1,
            None,
        ),
        // A note-on of a sounding key ends the earlier note; notes still down at the end close there.
        case(
            "hanging-and-repeated-notes.mid",
            single(480, vec![on(0, 60, 64), on(480, 60, 90), on(0, 64, 64), eot(480)]),
            "Ok: three notes closed at the end",
            |r| {
                r.as_ref().is_ok_and(|r| {
                    let n = &r.performance.notes;
                    n.len() == 3 && n.iter().all(|n| n.end <= r.performance.duration) && (r.performance.duration - 1.0).abs() < 1e-9
                })
            },
            None,
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Helpers for files on disk and the binary

/// A temporary folder removed at the end (also when the test fails).
struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("pianoforte-bad-input-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_no_panic(name: &str, bytes: &[u8]) -> Result<ReadPerformance, MidiError> {
    let result = std::panic::catch_unwind(|| midi::read(bytes)).unwrap_or_else(|_| panic!("{name}: midi::read panicked"));
    if let Ok(read) = &result {
        // Whatever is read encodes into valid ids.
        assert!(codec::to_ids(&codec::encode(&read.performance)).iter().all(|&id| id < 310), "{name}");
    }
    result
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs the binary; a run that takes over two minutes has hung (a FIFO, /dev/zero) and fails.
fn pianoforte(args: &[OsString]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pianoforte"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let (out, err) = (pipe(Box::new(child.stdout.take().unwrap())), pipe(Box::new(child.stderr.take().unwrap())));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("pianoforte {args:?} hung for two minutes; stderr: {}", err.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run { ok: status.success(), stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    assert!(!run.stderr.contains("panicked"), "pianoforte {args:?} panicked:\n{}", run.stderr);
    run
}

fn args(list: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    list.iter().map(|a| a.as_ref().to_os_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn reader_refuses_bad_files_with_the_right_reason_and_reads_odd_ones() {
    let mut failures = Vec::new();
    for case in bad_cases().iter().chain(&edge_cases()) {
        let result = read_no_panic(&case.name, &case.bytes);
        if !(case.read)(&result) {
            let got = result.as_ref().map(|r| {
                format!("{} notes, {} dropped, {:.3} s", r.performance.notes.len(), r.dropped_out_of_range, r.performance.duration)
            });
            failures.push(format!("{}: expected {}, got {got:?}", case.name, case.expect));
        }
        if let Err(e) = &result {
            let line = e.to_string();
            assert!(!line.is_empty() && !line.contains('\n'), "{}: `{line}` is not one line", case.name);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn files_over_the_size_limit_are_refused_before_parsing() {
    let mut bytes = single(480, two_notes());
    bytes.resize(midi::MAX_FILE_BYTES + 1, 0);
    assert_eq!(read_no_panic("huge", &bytes).unwrap_err(), MidiError::TooLarge(midi::MAX_FILE_BYTES + 1));
}

#[test]
fn every_prefix_of_a_real_performance_is_refused() {
    // The complete file reads; any cut of it, down to a single byte, is an error (never a
    // shorter performance with hanging notes, never a panic). The one exception is the last
    // byte, the zero length of the final end-of-track event: midly reads a missing length as
    // zero, and nothing of the performance is missing.
    let path = &maestro_2004()[0];
    let real = std::fs::read(path).unwrap();
    assert_eq!(real[real.len() - 3..], [0xFF, 0x2F, 0x00]);
    let whole = read_no_panic("whole", &real).unwrap().performance;
    assert!(!whole.notes.is_empty());
    assert_eq!(read_no_panic("all but the last byte", &real[..real.len() - 1]).unwrap().performance, whole);
    for cut in 0..real.len() - 1 {
        if let Ok(r) = read_no_panic(&format!("cut at {cut}"), &real[..cut]) {
            panic!("{} cut at {cut} of {} bytes read as {} notes", path.display(), real.len(), r.performance.notes.len());
        }
    }
}

#[test]
fn dataset_skips_every_bad_file_and_keeps_the_good_ones() {
    let tmp = TempDir::new("dataset");
    let (corpus, edge, out) = (tmp.0.join("corpus"), tmp.0.join("edge"), tmp.0.join("out"));
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::create_dir_all(&edge).unwrap();

    // (path, expected reason) for every file the builder must skip.
    let mut bad: Vec<(PathBuf, &str)> = Vec::new();
    for case in bad_cases() {
        let path = corpus.join(&case.name);
        std::fs::write(&path, &case.bytes).unwrap();
        bad.push((path, case.skip.unwrap()));
    }
    // Over 32 MiB: a valid file padded out, sparse on disk.
    let huge = corpus.join("huge.mid");
    std::fs::write(&huge, single(480, two_notes())).unwrap();
    std::fs::File::options().write(true).open(&huge).unwrap().set_len(40 << 20).unwrap();
    bad.push((huge, "too large for a MIDI file"));
    // A folder named like a MIDI file is searched, not read: only the file inside is a source.
    let folder = corpus.join("folder.mid");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("inside.mid"), b"").unwrap();
    bad.push((folder.join("inside.mid"), "empty file"));
    // Files without a MIDI extension are not sources at all.
    std::fs::write(corpus.join("notes.txt"), b"not a source").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let link = corpus.join("link-to-folder.mid");
        symlink(&folder, &link).unwrap();
        bad.push((link, "not a plain file (a folder, a pipe or a device)"));
        let dangling = corpus.join("dangling-link.mid");
        symlink(tmp.0.join("nowhere"), &dangling).unwrap();
        bad.push((dangling, "cannot read"));
        // Reading these would block for ever (a FIFO) or never end (/dev/zero).
        if Path::new("/dev/zero").exists() {
            let zero = corpus.join("dev-zero.mid");
            symlink("/dev/zero", &zero).unwrap();
            bad.push((zero, "not a plain file"));
        }
        let fifo = corpus.join("fifo.mid");
        if Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
            bad.push((fifo, "not a plain file"));
        }
        // Unreadable: meaningless when running as root, which reads it anyway.
        let locked = corpus.join("no-permission.mid");
        std::fs::write(&locked, single(480, two_notes())).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::File::open(&locked).is_err() {
            bad.push((locked, "cannot read"));
        } else {
            std::fs::remove_file(&locked).unwrap();
        }
    }

    let mut good: Vec<PathBuf> = Vec::new();
    for case in edge_cases() {
        let path = edge.join(&case.name);
        std::fs::write(&path, &case.bytes).unwrap();
        good.push(path);
    }
    let maestro = maestro_2004();
    good.extend(maestro[..2].iter().cloned());

    let run = pianoforte(&args(&[&"dataset", &corpus, &edge, &maestro[0], &maestro[1], &"--out", &out]));
    assert!(run.ok, "dataset failed:\n{}\n{}", run.stdout, run.stderr);
    let manifest: Manifest = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let mut documents: Vec<Document> = Vec::new();
    for split in manifest.splits.keys() {
        let docs = std::fs::read_to_string(out.join(format!("{split}.docs.json"))).unwrap();
        documents.extend(serde_json::from_str::<Vec<Document>>(&docs).unwrap());
    }

    let name = |p: &Path| p.display().to_string();
    for path in &good {
        assert!(documents.iter().any(|d| d.source == name(path)), "{} is not in any split", path.display());
    }
    assert_eq!(documents.len(), good.len(), "{:?}", documents.iter().map(|d| &d.source).collect::<Vec<_>>());
    let mut problems = Vec::new();
    for (path, reason) in &bad {
        match manifest.skipped.iter().find(|s| s.source == name(path)) {
            None => problems.push(format!("{} is not listed as skipped", path.display())),
            Some(s) if !s.reason.contains(reason) || s.reason.contains('\n') => {
                problems.push(format!("{}: reason `{}`, expected one line with `{reason}`", path.display(), s.reason))
            }
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(manifest.skipped.len(), bad.len(), "{:#?}", manifest.skipped);
    assert_eq!(manifest.notes_dropped_out_of_range, 1);
    assert!(run.stdout.contains(&format!("skipped {} file(s):", bad.len())), "{}", run.stdout);

    // The bad files alone: nothing usable, a clear failure, no panic, no manifest.
    let out2 = tmp.0.join("out2");
    let run = pianoforte(&args(&[&"dataset", &corpus, &"--out", &out2]));
    assert!(!run.ok, "a dataset of bad files only must fail:\n{}", run.stdout);
    assert!(run.stderr.contains("no usable performance"), "{}", run.stderr);
    assert!(run.stderr.trim_end().lines().count() == 1 && run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(!out2.join("manifest.json").exists());

    // An empty folder is no better.
    let empty = tmp.0.join("empty-folder");
    std::fs::create_dir_all(&empty).unwrap();
    let run = pianoforte(&args(&[&"dataset", &empty, &"--out", &out2]));
    assert!(!run.ok && run.stderr.contains("no usable performance found in 0 file(s)"), "{}", run.stderr);
}

#[test]
fn encode_fails_with_one_line_on_bad_files() {
    let tmp = TempDir::new("encode");
    let real = std::fs::read(&maestro_2004()[0]).unwrap();
    for (name, bytes, reason) in [
        ("text.mid", b"hello".to_vec(), "not a readable MIDI file"),
        ("empty.mid", vec![], "empty file"),
        ("cut.mid", real[..real.len() / 2].to_vec(), "truncated or corrupt"),
        ("format-2.mid", smf(Format::Sequential, Timing::Metrical(480.into()), &[two_notes()]), "format-2"),
    ] {
        let path = tmp.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        let run = pianoforte(&args(&[&"encode", &path]));
        assert!(!run.ok, "{name}: encode succeeded");
        assert!(run.stdout.is_empty(), "{name}: {}", run.stdout);
        let err = run.stderr.trim_end();
        assert!(err.starts_with("error: ") && !err.contains('\n') && err.contains(reason), "{name}: `{err}`");
    }
    let run = pianoforte(&args(&[&"encode", &tmp.0.join("missing.mid")]));
    assert!(!run.ok && run.stderr.trim_end().lines().count() == 1, "{}", run.stderr);
    // A pipe named like a MIDI file would block the reader for ever.
    let fifo = tmp.0.join("fifo.mid");
    if Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
        let run = pianoforte(&args(&[&"encode", &fifo]));
        assert!(!run.ok && run.stderr.contains("not a plain file"), "{}", run.stderr);
    }
    // The reader's own happy path through the binary, for contrast.
    let good = tmp.0.join("good.mid");
    std::fs::write(&good, single(480, two_notes())).unwrap();
    let run = pianoforte(&args(&[&"encode", &good]));
    assert!(run.ok && run.stdout.contains("ON 60\n") && run.stdout.contains("OFF 64\n"), "{}{}", run.stdout, run.stderr);
}

#[test]
fn decode_reports_the_line_of_malformed_text() {
    let tmp = TempDir::new("decode");
    let output = tmp.0.join("out.mid");
    for (text, line) in [
        (&b"VEL 64\nON 60\n# a comment\nSHIFT 100ms\nJUMP 3\nOFF 60\n"[..], "line 5"),
        (b"ON 200\n", "line 1"),
        (b"\n\nSHIFT 15ms\n", "line 3"),
        (b"VEL 64\nON 60 61\n", "line 2"),
        (b"VEL 0\n", "line 1"),
    ] {
        let input = tmp.0.join("events.txt");
        std::fs::write(&input, text).unwrap();
        let run = pianoforte(&args(&[&"decode", &input, &"-o", &output]));
        let err = run.stderr.trim_end();
        assert!(!run.ok, "{}: decode succeeded", String::from_utf8_lossy(text));
        assert!(err.starts_with("error: ") && err.contains(line) && !err.contains('\n'), "`{err}`, expected {line}");
        assert!(!output.exists());
    }
    // Not text at all.
    let input = tmp.0.join("binary.txt");
    std::fs::write(&input, [0xFF, 0xFE, 0x00, 0x80]).unwrap();
    let run = pianoforte(&args(&[&"decode", &input, &"-o", &output]));
    assert!(!run.ok && run.stderr.trim_end().lines().count() == 1 && !output.exists(), "{}", run.stderr);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Noise after a valid header never panics; whatever reads encodes into valid ids.
    #[test]
    fn noise_after_a_header_never_panics(format in 0u16..3, tracks in 0u16..4, division: u16, body in prop::collection::vec(any::<u8>(), 0..600)) {
        let bytes = cat(&[&mthd(format, tracks, division), &body]);
        let _ = read_no_panic("noise", &bytes);
    }

    /// A real performance with a few bytes changed never panics.
    #[test]
    fn damaged_real_performances_never_panic(changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = std::fs::read(&maestro_2004()[0]).unwrap();
        let n = bytes.len();
        for (at, byte) in changes {
            bytes[at.index(n)] = byte;
        }
        let _ = read_no_panic("damaged", &bytes);
    }
}

#[test]
fn a_motif_memory_or_tightness_outside_0_to_1_is_refused_in_words() {
    for (flag, name) in [("--memory", "memory"), ("--tightness", "tightness")] {
        for command in ["generate", "eval"] {
            for bad in ["1.5", "-0.1", "NaN"] {
                let out = std::env::temp_dir().join(format!("pianoforte-bad-{name}-{}.mid", std::process::id()));
                let setting = format!("{flag}={bad}");
                let run = match command {
                    "generate" => pianoforte(&args(&[&"generate", &"--seconds", &"1", &setting, &"-o", &out])),
                    _ => pianoforte(&args(&[&"eval", &setting, &out])),
                };
                assert!(!run.ok, "{command} {setting} ran");
                let said = format!("{name} must lie in 0..=1");
                assert!(run.stderr.contains(&said), "{command} {setting}: {}{}", run.stdout, run.stderr);
            }
        }
    }
}

/// `perform`: a file that is no score, a temperature out of range, or a model of another kind is
/// refused in words, and no performance is written.
#[test]
fn perform_refuses_what_it_cannot_play_in_words() {
    let dir = std::env::temp_dir().join(format!("pianoforte-bad-perform-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out.mid");
    let junk = dir.join("junk.mid");
    std::fs::write(&junk, b"MThd\x00\x00\x00\x06\x00\x01").unwrap();
    let performance = dir.join("performance.mid");
    std::fs::write(&performance, pianoforte::codec::midi::write(&pianoforte::codec::Performance::default())).unwrap();
    let score = dir.join("score.mid");
    let note = pianoforte::codec::Note { pitch: 60, velocity: 80, start: 0.0, end: 0.5 };
    std::fs::write(
        &score,
        pianoforte::codec::midi::write(&pianoforte::codec::Performance { notes: vec![note], pedal: Vec::new(), duration: 1.0 }),
    )
    .unwrap();
    let event_model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/pianoforte-gru.onnx");
    let cases: [(Vec<OsString>, &str); 4] = [
        (args(&[&"perform", &junk, &"-o", &out]), "not a readable MIDI file"),
        (args(&[&"perform", &performance, &"-o", &out]), "no notes to play"),
        (args(&[&"perform", &junk, &"--temperature=3", &"-o", &out]), "--temperature must lie in 0..=2"),
        (args(&[&"perform", &score, &"--model", &event_model, &"-o", &out]), "not a score-to-performance model"),
    ];
    for (command, said) in cases {
        let run = pianoforte(&command);
        assert!(!run.ok, "{command:?} ran");
        assert!(run.stderr.contains(said), "{command:?}: {}", run.stderr);
        assert!(!out.exists(), "{command:?} wrote a performance");
    }
}
