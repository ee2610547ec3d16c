//! Standard MIDI files in and out: `midly` splits files into chunks and writes them; track
//! events are decoded here (`read_track`), several times faster than midly's event decoding.
//!
//! Reading merges every track and channel into one piano with absolute times from the tempo
//! map; writing produces a format-0 file at 480 PPQ and 125 BPM, where one tick is exactly 1 ms.

use crate::codec::{Keys, Note, PedalChange, Performance, Pitch};
use midly::{Format, MetaMessage, MidiMessage, Timing, TrackEvent, TrackEventKind};
use std::fmt;

/// Files larger than this are refused rather than parsed (a performance is a few hundred KB).
pub const MAX_FILE_BYTES: usize = 32 << 20;
/// Performances longer than this are refused: they come from a broken tempo map.
pub const MAX_DURATION_SECONDS: f64 = 6.0 * 3600.0;

/// Why a MIDI file could not be read: one line, for people.
#[derive(Debug, Clone, PartialEq)]
pub enum MidiError {
    Empty,
    TooLarge(usize),
    Parse(String),
    /// Cut short or damaged inside a track: an unreadable event, a track without its
    /// end-of-track event, or fewer tracks than the header announces.
    Truncated(String),
    Format2,
    ZeroTicksPerBeat,
    ZeroTempo,
    AbsurdDuration(f64),
}

impl fmt::Display for MidiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MidiError::Empty => write!(f, "empty file"),
            MidiError::TooLarge(n) => {
                write!(f, "file too large ({n} bytes, limit {MAX_FILE_BYTES})")
            }
            MidiError::Parse(e) => write!(f, "not a readable MIDI file: {e}"),
            MidiError::Truncated(e) => write!(f, "truncated or corrupt MIDI file: {e}"),
            MidiError::Format2 => write!(f, "format-2 MIDI (independent sequences) is not a performance"),
            MidiError::ZeroTicksPerBeat => write!(f, "time division of zero ticks per beat"),
            MidiError::ZeroTempo => write!(f, "a tempo of zero microseconds per beat"),
            MidiError::AbsurdDuration(s) => {
                write!(f, "absurd duration ({:.0} h) from the tempo map", s / 3600.0)
            }
        }
    }
}

impl std::error::Error for MidiError {}

/// A performance read from a file, with what had to be left out.
#[derive(Debug, Clone, Default)]
pub struct ReadPerformance {
    pub performance: Performance,
    /// Notes outside 21..=108, dropped.
    pub dropped_out_of_range: usize,
}

/// Converts ticks to seconds along a tempo map of (tick, microseconds per beat).
struct TempoMap {
    /// (start tick, seconds at that tick, seconds per tick from there on)
    segments: Vec<(u64, f64, f64)>,
    cursor: usize,
}

impl TempoMap {
    fn new(timing: Timing, mut tempos: Vec<(u64, u32)>) -> Result<TempoMap, MidiError> {
        let ticks_per_beat = match timing {
            Timing::Metrical(tpb) if tpb.as_int() == 0 => return Err(MidiError::ZeroTicksPerBeat),
            Timing::Metrical(tpb) => tpb.as_int() as f64,
            // SMPTE division: a fixed number of ticks per second; tempo events do not apply.
            Timing::Timecode(fps, sub) => {
                let per_second = fps.as_f32() as f64 * sub.max(1) as f64;
                return Ok(TempoMap { segments: vec![(0, 0.0, 1.0 / per_second)], cursor: 0 });
            }
        };
        tempos.sort_by_key(|&(tick, _)| tick);
        let mut segments = vec![(0u64, 0.0, 500_000.0 / 1e6 / ticks_per_beat)];
        for (tick, tempo) in tempos {
            if tempo == 0 {
                return Err(MidiError::ZeroTempo);
            }
            let &(start, seconds, per_tick) = segments.last().unwrap();
            let at = seconds + (tick - start) as f64 * per_tick;
            let per_tick = tempo as f64 / 1e6 / ticks_per_beat;
            if tick == start {
                *segments.last_mut().unwrap() = (start, seconds, per_tick);
            } else {
                segments.push((tick, at, per_tick));
            }
        }
        Ok(TempoMap { segments, cursor: 0 })
    }

    /// Seconds at `tick`; fastest when called with non-decreasing ticks.
    #[inline]
    fn seconds(&mut self, tick: u64) -> f64 {
        if self.segments[self.cursor].0 > tick {
            self.cursor = 0;
        }
        while self.cursor + 1 < self.segments.len() && self.segments[self.cursor + 1].0 <= tick {
            self.cursor += 1;
        }
        let (start, seconds, per_tick) = self.segments[self.cursor];
        seconds + (tick - start) as f64 * per_tick
    }
}

/// What the reader keeps of a track event.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kept {
    On(u8, u8),
    Off(u8),
    Sustain(u8),
}

/// Whether the header that midly will read has the SMPTE division byte 0x80 (-128 frames per
/// second): midly 0.5 negates it as an `i8`, which panics where overflow checks are on (tests,
/// debug builds, the fuzzer) and refuses it otherwise. A file has its header at the start; a
/// RIFF (RMID) file has it inside, so there any `MThd` counts.
fn smpte_minus_128(bytes: &[u8]) -> bool {
    let at = |p: usize| bytes.get(p + 12) == Some(&0x80);
    if bytes.starts_with(b"RIFF") { bytes.windows(4).enumerate().any(|(p, w)| w == b"MThd" && at(p)) } else { at(0) }
}

/// A variable-length number as midly 0.5 reads it: at most 4 bytes of 7 bits, the last one
/// taken as final even with its top bit set, and, cut short by the end of the track, what was
/// read so far (midly without `strict` is lenient there).
#[inline]
fn vlq(track: &[u8], at: &mut usize) -> u32 {
    let mut value = 0u32;
    for _ in 0..4 {
        let Some(&byte) = track.get(*at) else { break };
        *at += 1;
        value = value << 7 | (byte & 0x7f) as u32;
        if byte < 0x80 {
            break;
        }
    }
    value
}

/// A length-prefixed blob (meta data, sysex) as midly reads it: one that claims more bytes
/// than the track holds is the rest of the track.
#[inline]
fn blob<'a>(track: &'a [u8], at: &mut usize) -> &'a [u8] {
    let len = vlq(track, at) as usize;
    let start = (*at).min(track.len());
    *at = start.saturating_add(len).min(track.len());
    &track[start..*at]
}

/// Whether midly can read the data of an SMPTE-offset meta event (5 bytes or more): it
/// refuses an impossible time, and with it the event.
fn smpte_offset_readable(data: &[u8]) -> bool {
    let fps = [24, 25, 29, 30][(data[0] >> 5 & 3) as usize];
    (data[0] & 0x1f) < 24 && data[1] < 60 && data[2] < 60 && data[3] < fps && data[4] < 100
}

/// Decodes the events of track number `number` (from 1) from its chunk bytes, appends its
/// notes and sustain changes to `kept` and its tempo changes to `tempos` (with absolute ticks),
/// and returns the tick of its end-of-track event.
///
/// This replaces midly's event iterator (39% of the time of reading a file) and must accept and
/// refuse exactly what `midly::EventIter` 0.5 (without `strict`) does: an event midly cannot
/// read ends its track there, which `read` reports as a truncated file, like a track without
/// an end-of-track event. midly cannot read an event whose status byte is missing (data byte
/// without running status, or the track ends after the delta), whose status is a system
/// common or real-time message (0xF1..=0xF6, 0xF8..=0xFE), a channel message cut short or with
/// a data byte of 0x80 or more, a meta event without its type byte, a key signature with less
/// than 2 bytes of data or an SMPTE offset with an impossible time. Everything else it reads,
/// leniently: deltas and lengths cut short by the end of the track, and blobs longer than it.
fn read_track(track: &[u8], number: usize, kept: &mut Vec<(u64, Kept)>, tempos: &mut Vec<(u64, u32)>) -> Result<u64, MidiError> {
    // Running status: the last channel status byte; 0 for none (meta and sysex events clear it).
    let (mut at, mut running, mut tick) = (0usize, 0u8, 0u64);
    while at < track.len() {
        let unreadable = || MidiError::Truncated(format!("unreadable event in track {number}, {} bytes before its end", track.len() - at));
        let mut next = at;
        tick += vlq(track, &mut next) as u64;
        let status = match track.get(next) {
            Some(&byte) if byte >= 0x80 => {
                next += 1;
                byte
            }
            Some(_) if running != 0 => running,
            _ => return Err(unreadable()),
        };
        match status {
            0x80..=0xef => {
                running = status;
                // Program change and channel pressure have one data byte, the others two.
                let len = if (0xc0..=0xdf).contains(&status) { 1 } else { 2 };
                let data = match track.get(next..next + len) {
                    Some(data) if data.iter().all(|&b| b < 0x80) => data,
                    _ => return Err(unreadable()),
                };
                next += len;
                match status >> 4 {
                    0x9 if data[1] > 0 => kept.push((tick, Kept::On(data[0], data[1]))),
                    0x8 | 0x9 => kept.push((tick, Kept::Off(data[0]))),
                    0xb if data[0] == 64 => kept.push((tick, Kept::Sustain(data[1]))),
                    _ => {}
                }
            }
            0xff => {
                running = 0;
                let Some(&kind) = track.get(next) else {
                    return Err(unreadable());
                };
                next += 1;
                let data = blob(track, &mut next);
                match kind {
                    0x2f => return Ok(tick),
                    // Shorter tempo data is an unknown meta event to midly: ignored.
                    0x51 if data.len() >= 3 => {
                        tempos.push((tick, u32::from_be_bytes([0, data[0], data[1], data[2]])));
                    }
                    0x54 if data.len() >= 5 && !smpte_offset_readable(data) => {
                        return Err(unreadable());
                    }
                    0x59 if data.len() < 2 => return Err(unreadable()),
                    _ => {}
                }
            }
            0xf0 | 0xf7 => {
                running = 0;
                blob(track, &mut next);
            }
            _ => return Err(unreadable()),
        }
        at = next;
    }
    Err(MidiError::Truncated(format!("track {number} has no end-of-track event")))
}

/// The bytes of the MIDI file at `path` ([`crate::files::read_plain_file`], at most [`MAX_FILE_BYTES`]).
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    crate::files::read_plain_file(path, MAX_FILE_BYTES as u64, "a MIDI file")
}

/// Reads a standard MIDI file (format 0 or 1) into one piano performance.
pub fn read(bytes: &[u8]) -> Result<ReadPerformance, MidiError> {
    if bytes.is_empty() {
        return Err(MidiError::Empty);
    }
    if bytes.len() > MAX_FILE_BYTES {
        return Err(MidiError::TooLarge(bytes.len()));
    }
    if smpte_minus_128(bytes) {
        return Err(MidiError::Parse("SMPTE time division of -128 frames per second".into()));
    }
    let (header, tracks) = midly::parse(bytes).map_err(|e| MidiError::Parse(e.to_string()))?;
    if header.format == Format::Sequential {
        return Err(MidiError::Format2);
    }
    // Gather note, sustain and tempo events from every track with absolute ticks. A track's
    // end only counts towards the duration, so it is kept apart: then a file whose events lie
    // in one track (format 0, or MAESTRO's format 1) is already in tick order.
    let mut kept: Vec<(u64, Kept)> = Vec::with_capacity(bytes.len() / 4);
    let mut tempos = Vec::new();
    let mut last_tick = 0u64;
    // midly only splits the file into chunks here (cheap); the events of each track are
    // decoded by `read_track` straight from the chunk's bytes, several times faster than
    // midly's general event decoding. midly (not strict) silently ends a track at an event it
    // cannot read and takes the rest of the file for a chunk that claims more: a cut file
    // would read as a shorter performance with hanging notes. The end-of-track event that
    // every track must end with tells; `read_track` refuses such tracks.
    let announced = tracks.size_hint().0;
    let mut found = 0;
    for track in tracks {
        let track = track.map_err(|e| MidiError::Parse(e.to_string()))?;
        found += 1;
        let end = read_track(track.unread(), found, &mut kept, &mut tempos)?;
        last_tick = last_tick.max(end);
    }
    if found < announced {
        return Err(MidiError::Truncated(format!("the header announces {announced} tracks, the file holds {found}")));
    }
    // Stable: simultaneous events keep their file order (track by track).
    if !kept.is_sorted_by_key(|&(tick, _)| tick) {
        kept.sort_by_key(|&(tick, _)| tick);
    }
    let mut tempo = TempoMap::new(header.timing, tempos)?;
    // Seconds grow with ticks, so the duration is the time of the last tick.
    last_tick = last_tick.max(kept.last().map_or(0, |&(tick, _)| tick));
    let duration = tempo.seconds(last_tick);
    if duration > MAX_DURATION_SECONDS {
        return Err(MidiError::AbsurdDuration(duration));
    }

    // Notes are pushed at their onset (so in start order) and given their end when it comes;
    // `keys` pairs each key with the index of its sounding note. Notes outside the piano are
    // only counted.
    let mut keys: Keys<usize> = Keys::new();
    let mut notes: Vec<Note> = Vec::with_capacity(kept.len() / 2);
    let mut pedal = Vec::new();
    let (mut pedal_down, mut dropped) = (false, 0usize);
    for (tick, event) in kept {
        match event {
            Kept::On(key, velocity) => {
                if Pitch::new(key).is_none() {
                    dropped += 1;
                    continue;
                }
                let time = tempo.seconds(tick);
                // A repeated NOTE_ON of a sounding key ends the earlier note first.
                if let Some(earlier) = keys.press(key, notes.len()) {
                    notes[earlier].end = time;
                }
                notes.push(Note { pitch: key, velocity, start: time, end: f64::NAN });
            }
            Kept::Off(key) => {
                if let Some(index) = keys.release(key) {
                    notes[index].end = tempo.seconds(tick);
                }
            }
            Kept::Sustain(value) => {
                if (value >= 64) != pedal_down {
                    pedal_down = value >= 64;
                    pedal.push(PedalChange { time: tempo.seconds(tick), down: pedal_down });
                }
            }
        }
    }
    keys.release_all(|_, index| notes[index].end = duration);
    // In start order already: order each group of equal starts by pitch (stable).
    let mut group = 0;
    while group < notes.len() {
        let start = notes[group].start;
        let len = notes[group..].iter().take_while(|n| n.start == start).count();
        if len > 1 {
            notes[group..group + len].sort_by_key(|n| n.pitch);
        }
        group += len;
    }
    let order = |a: &Note, b: &Note| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch));
    if !notes.is_sorted_by(|a, b| order(a, b).is_le()) {
        notes.sort_by(order);
    }
    Ok(ReadPerformance { performance: Performance { notes, pedal, duration }, dropped_out_of_range: dropped })
}

/// Ticks per quarter note of written files.
pub const WRITE_PPQ: u16 = 480;

/// How a file is laid out on a song's grid: its tempo, time signature and where the performance
/// starts. The times of the performance are kept exactly (to the tick, at most 1 ms); only the
/// grid a DAW shows them on changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteGrid {
    /// Quarter notes per minute.
    pub bpm: f64,
    /// Time signature (numerator, denominator); the denominator a power of two. None writes none.
    pub time_signature: Option<(u8, u8)>,
    /// Seconds of silence before the performance's time 0 (the file's tick 0 is a bar line
    /// this long before it).
    pub offset: f64,
}

impl WriteGrid {
    /// The codec's own layout: 125 BPM (480 000 us per quarter note) at 480 PPQ, so that one
    /// tick is exactly 1 ms; no time signature.
    pub const MILLISECONDS: WriteGrid = WriteGrid { bpm: 125.0, time_signature: None, offset: 0.0 };

    /// Ticks per quarter note: 480 at 125 BPM, else 960 or more so that a tick is at most 1 ms.
    pub fn ppq(&self) -> u16 {
        if *self == (WriteGrid { offset: self.offset, ..WriteGrid::MILLISECONDS }) {
            return WRITE_PPQ;
        }
        let at_most_1ms = (60_000.0 / self.bpm()).ceil();
        at_most_1ms.clamp(960.0, 32_767.0) as u16
    }

    /// The tempo, kept to what a MIDI file can hold (tempos 4..60 000 000 us per quarter note).
    fn bpm(&self) -> f64 {
        if self.bpm.is_finite() { self.bpm.clamp(1.0, 1000.0) } else { 120.0 }
    }

    /// Microseconds per quarter note.
    pub fn tempo_us(&self) -> u32 {
        (60e6 / self.bpm()).round() as u32
    }
}

/// Writes a performance as a format-0 MIDI file (480 PPQ, one tempo, channel 1, piano).
/// Every note lasts at least one tick (1 ms); see below.
pub fn write(performance: &Performance) -> Vec<u8> {
    write_on_grid(performance, &WriteGrid::MILLISECONDS)
}

/// Writes a performance as a format-0 MIDI file on a song's grid: the tempo and time signature
/// of `grid` as meta events at tick 0, every time shifted by `grid.offset`, and ticks fine
/// enough to keep every time within half a millisecond. Every note lasts at least one tick.
pub fn write_on_grid(performance: &Performance, grid: &WriteGrid) -> Vec<u8> {
    let ppq = grid.ppq();
    let tempo_us = grid.tempo_us();
    let ticks_per_second = ppq as f64 * 1e6 / tempo_us as f64;
    let offset = grid.offset.max(0.0);
    let tick = |seconds: f64| ((seconds.max(0.0) + offset) * ticks_per_second).round() as u64;
    // Readers such as pretty_midi cannot pair a NOTE_ON and NOTE_OFF on the same tick, so a note
    // shorter than a tick lasts one tick, unless the same key strikes again on that very tick.
    let mut order: Vec<usize> = (0..performance.notes.len()).collect();
    order.sort_by_key(|&i| (performance.notes[i].pitch, tick(performance.notes[i].start), i));
    let mut offs: Vec<u64> = performance.notes.iter().map(|n| tick(n.end.max(n.start))).collect();
    for (k, &i) in order.iter().enumerate() {
        let (on, pitch) = (tick(performance.notes[i].start), performance.notes[i].pitch);
        let next_on = order.get(k + 1).filter(|&&j| performance.notes[j].pitch == pitch).map(|&j| tick(performance.notes[j].start));
        if offs[i] == on && next_on.is_none_or(|next| next > on) {
            offs[i] = on + 1;
        }
    }
    // (tick, rank, order, message): same-tick order is note-offs, pedal, note-ons, and a
    // zero-length note's off right after its own on, so every reader pairs notes correctly.
    let mut timed: Vec<(u64, u8, usize, u8, MidiMessage)> = Vec::new();
    for (i, n) in performance.notes.iter().enumerate() {
        let (on, off) = (tick(n.start), offs[i]);
        let (key, vel) = (n.pitch.min(127).into(), n.velocity.clamp(1, 127).into());
        timed.push((on, 2, i, 0, MidiMessage::NoteOn { key, vel }));
        let off_rank = if off == on { (2, 1) } else { (0, 0) };
        timed.push((off, off_rank.0, i, off_rank.1, MidiMessage::NoteOff { key, vel: 0.into() }));
    }
    for (i, change) in performance.pedal.iter().enumerate() {
        let value = if change.down { 127 } else { 0 };
        let message = MidiMessage::Controller { controller: 64.into(), value: value.into() };
        timed.push((tick(change.time), 1, i, 0, message));
    }
    timed.sort_by_key(|a| (a.0, a.1, a.2, a.3));

    let mut track = vec![
        TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::TrackName(b"pianoforte")) },
        TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::Tempo(tempo_us.into())) },
    ];
    if let Some((numerator, denominator)) = grid.time_signature
        && numerator > 0
        && denominator.is_power_of_two()
    {
        // 24 MIDI clocks per metronome click and 8 32nd notes per quarter: the usual values.
        let meta = MetaMessage::TimeSignature(numerator, denominator.trailing_zeros() as u8, 24, 8);
        track.push(TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(meta) });
    }
    track.push(TrackEvent {
        delta: 0.into(),
        kind: TrackEventKind::Midi { channel: 0.into(), message: MidiMessage::ProgramChange { program: 0.into() } },
    });
    let mut now = 0u64;
    for (at, _, _, _, message) in timed {
        // Deltas are 28-bit; a gap longer than that (74 hours) is split with empty events.
        let mut delta = at - now;
        while delta > 0x0FFF_FFFF {
            track.push(TrackEvent { delta: 0x0FFF_FFFF.into(), kind: TrackEventKind::Meta(MetaMessage::Marker(b"")) });
            delta -= 0x0FFF_FFFF;
        }
        track.push(TrackEvent { delta: (delta as u32).into(), kind: TrackEventKind::Midi { channel: 0.into(), message } });
        now = at;
    }
    let end = tick(performance.duration).saturating_sub(now).min(0x0FFF_FFFF) as u32;
    track.push(TrackEvent { delta: end.into(), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });

    let header = midly::Header::new(Format::SingleTrack, Timing::Metrical(ppq.into()));
    let mut out = Vec::new();
    midly::write_std(&header, std::iter::once(&track), &mut out).expect("writing to memory cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the reader took from midly's event iterator before `read_track` replaced it: the
    /// kept events, the tempo changes, and the end tick or the unread bytes of the event that
    /// midly could not read (0: no end-of-track event).
    /// Kept events, tempo changes, and the end tick or the unread length.
    type Track = (Vec<(u64, Kept)>, Vec<(u64, u32)>, Result<u64, usize>);

    fn midly_track(track: &[u8]) -> Track {
        let (mut kept, mut tempos, mut tick) = (Vec::new(), Vec::new(), 0u64);
        let mut events = midly::EventIter::new(track);
        loop {
            let unread = events.unread().len();
            let Some(Ok(TrackEvent { delta, kind })) = events.next() else {
                return (kept, tempos, Err(unread));
            };
            tick += delta.as_int() as u64;
            match kind {
                TrackEventKind::Midi { message: MidiMessage::NoteOn { key, vel }, .. } if vel > 0 => {
                    kept.push((tick, Kept::On(key.as_int(), vel.as_int())))
                }
                TrackEventKind::Midi { message: MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. }, .. } => {
                    kept.push((tick, Kept::Off(key.as_int())))
                }
                TrackEventKind::Midi { message: MidiMessage::Controller { controller, value }, .. } if controller == 64 => {
                    kept.push((tick, Kept::Sustain(value.as_int())))
                }
                TrackEventKind::Meta(MetaMessage::Tempo(t)) => tempos.push((tick, t.as_int())),
                TrackEventKind::Meta(MetaMessage::EndOfTrack) => return (kept, tempos, Ok(tick)),
                _ => {}
            }
        }
    }

    #[test]
    fn read_track_reads_what_midly_reads() {
        // Random tracks built from pieces of events (status bytes of every kind, data bytes,
        // meta types, lengths, long deltas), so that most events are nearly valid; every prefix
        // of each is compared too, which covers events cut at every byte.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let pieces: &[&[u8]] = &[
            &[0x00],
            &[0x81, 0x00],
            &[0xff, 0xff, 0xff, 0xff, 0x7f],
            &[0x90],
            &[0x80],
            &[0xb0],
            &[0xc0],
            &[0xd0],
            &[0xe0],
            &[0xa0],
            &[0xf0],
            &[0xf7],
            &[0xf1],
            &[0xf8],
            &[0xff],
            &[0x2f, 0x00],
            &[0x51, 0x03],
            &[0x51, 0x02],
            &[0x54, 0x05],
            &[0x58, 0x04],
            &[0x59, 0x01],
            &[0x59, 0x02],
            &[0x00, 0x02],
            &[0x20, 0x01],
            &[0x7f, 0x83, 0x00],
            &[0x40],
            &[0x3c],
            &[0x00],
            &[0x7f],
            &[0x64],
            &[0x05],
            &[0x20],
        ];
        for _ in 0..3000 {
            let mut track = Vec::new();
            for _ in 0..random(40) {
                if random(8) == 0 {
                    track.push(random(256) as u8);
                } else {
                    track.extend_from_slice(pieces[random(pieces.len() as u64) as usize]);
                }
            }
            for len in 0..=track.len() {
                let prefix = &track[..len];
                let (mut kept, mut tempos) = (Vec::new(), Vec::new());
                let ours = match read_track(prefix, 1, &mut kept, &mut tempos) {
                    Ok(tick) => Ok(tick),
                    Err(MidiError::Truncated(e)) if e.contains("no end-of-track") => Err(0),
                    Err(MidiError::Truncated(e)) => Err(e.split(", ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()),
                    Err(e) => panic!("{e}"),
                };
                let (midly_kept, midly_tempos, midly_end) = midly_track(prefix);
                assert_eq!((ours, &kept, &tempos), (midly_end, &midly_kept, &midly_tempos), "track {prefix:02x?}");
            }
        }
    }

    #[test]
    fn written_files_read_back_exactly() {
        let performance = Performance {
            notes: vec![
                Note { pitch: 60, velocity: 70, start: 0.01, end: 0.5 },
                Note { pitch: 60, velocity: 90, start: 0.5, end: 0.5 },
                Note { pitch: 64, velocity: 20, start: 0.25, end: 1.23 },
            ],
            pedal: vec![PedalChange { time: 0.2, down: true }, PedalChange { time: 1.0, down: false }],
            duration: 1.5,
        };
        let read = read(&write(&performance)).unwrap();
        let mut expected = performance.clone();
        // A zero-length note lasts one tick, so that every reader can pair it.
        expected.notes[1].end = 0.501;
        expected.notes.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
        assert_eq!(read.performance.notes.len(), 3);
        for (a, b) in expected.notes.iter().zip(&read.performance.notes) {
            assert_eq!((a.pitch, a.velocity), (b.pitch, b.velocity));
            assert!((a.start - b.start).abs() < 1e-9 && (a.end - b.end).abs() < 1e-9, "{a:?} {b:?}");
        }
        assert_eq!(read.performance.pedal.len(), 2);
        assert!((read.performance.duration - 1.5).abs() < 1e-9);
    }

    #[test]
    fn tempo_changes_in_any_track_apply_to_all() {
        // Format 1: track 0 holds a tempo change at beat 1 (to half speed); track 1 the notes.
        let tpb = 100u16;
        let meta = |delta: u32, m| TrackEvent { delta: delta.into(), kind: TrackEventKind::Meta(m) };
        let midi = |delta: u32, message| TrackEvent { delta: delta.into(), kind: TrackEventKind::Midi { channel: 3.into(), message } };
        let t0 = vec![
            meta(0, MetaMessage::Tempo(500_000.into())),
            meta(100, MetaMessage::Tempo(1_000_000.into())),
            meta(0, MetaMessage::EndOfTrack),
        ];
        let t1 = vec![
            midi(50, MidiMessage::NoteOn { key: 60.into(), vel: 64.into() }),
            midi(100, MidiMessage::NoteOff { key: 60.into(), vel: 0.into() }),
            midi(0, MidiMessage::NoteOn { key: 10.into(), vel: 64.into() }),
            midi(10, MidiMessage::NoteOn { key: 10.into(), vel: 0.into() }),
            meta(0, MetaMessage::EndOfTrack),
        ];
        let header = midly::Header::new(Format::Parallel, Timing::Metrical(tpb.into()));
        let mut bytes = Vec::new();
        midly::write_std(&header, [&t0, &t1], &mut bytes).unwrap();
        let read = read(&bytes).unwrap();
        let note = read.performance.notes[0];
        assert!((note.start - 0.25).abs() < 1e-12);
        // 50 ticks at 0.5 s/beat, then 50 ticks at 1 s/beat.
        assert!((note.end - 1.0).abs() < 1e-12, "{note:?}");
        assert_eq!(read.dropped_out_of_range, 1);
    }

    #[test]
    fn smpte_division_uses_ticks_per_second() {
        let midi = |delta: u32, message| TrackEvent { delta: delta.into(), kind: TrackEventKind::Midi { channel: 0.into(), message } };
        let track = vec![
            midi(25 * 40, MidiMessage::NoteOn { key: 60.into(), vel: 64.into() }),
            midi(25 * 40 / 2, MidiMessage::NoteOff { key: 60.into(), vel: 0.into() }),
            TrackEvent { delta: 0.into(), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) },
        ];
        let header = midly::Header::new(Format::SingleTrack, Timing::Timecode(midly::Fps::Fps25, 40));
        let mut bytes = Vec::new();
        midly::write_std(&header, [&track], &mut bytes).unwrap();
        let note = read(&bytes).unwrap().performance.notes[0];
        assert!((note.start - 1.0).abs() < 1e-9 && (note.end - 1.5).abs() < 1e-9, "{note:?}");
    }

    #[test]
    fn files_on_a_song_grid_keep_exact_times() {
        let performance = Performance {
            notes: vec![
                Note { pitch: 60, velocity: 70, start: 0.0, end: 0.4567 },
                Note { pitch: 64, velocity: 20, start: 1.2345, end: 2.0001 },
                Note { pitch: 67, velocity: 99, start: 3.3333, end: 3.3333 },
            ],
            pedal: vec![PedalChange { time: 0.5, down: true }, PedalChange { time: 1.7, down: false }],
            duration: 4.0,
        };
        for (bpm, signature, offset) in [(92.0, (3, 4), 0.75), (120.0, (4, 4), 0.0), (45.5, (6, 8), 1.0), (240.0, (7, 8), 0.1)] {
            let grid = WriteGrid { bpm, time_signature: Some(signature), offset };
            let bytes = write_on_grid(&performance, &grid);
            let (header, tracks) = midly::parse(&bytes).unwrap();
            let Timing::Metrical(ppq) = header.timing else { panic!() };
            assert!(60.0 / bpm / ppq.as_int() as f64 <= 0.001 + 1e-12, "a tick is at most 1 ms");
            let events: Vec<TrackEvent> = tracks.into_iter().next().unwrap().unwrap().map(|e| e.unwrap()).collect();
            let metas: Vec<MetaMessage> = events
                .iter()
                .take_while(|e| e.delta == 0)
                .filter_map(|e| if let TrackEventKind::Meta(m) = e.kind { Some(m) } else { None })
                .collect();
            assert!(metas.contains(&MetaMessage::Tempo(((60e6 / bpm).round() as u32).into())), "{metas:?}");
            let (n, d) = signature;
            assert!(metas.contains(&MetaMessage::TimeSignature(n, (d as u32).trailing_zeros() as u8, 24, 8)), "{metas:?}");
            let read = read(&bytes).unwrap().performance;
            assert_eq!(read.notes.len(), 3);
            for (a, b) in performance.notes.iter().zip(&read.notes) {
                assert_eq!((a.pitch, a.velocity), (b.pitch, b.velocity));
                assert!((a.start + offset - b.start).abs() <= 0.0005 + 1e-9, "{bpm}: {a:?} {b:?}");
                assert!(a.end == a.start || (a.end + offset - b.end).abs() <= 0.0005 + 1e-9, "{bpm}: {a:?} {b:?}");
            }
            assert!((read.pedal[0].time - 0.5 - offset).abs() <= 0.0005 + 1e-9);
            assert!((read.duration - 4.0 - offset).abs() <= 0.0005 + 1e-9);
        }
        // The codec's own layout is unchanged: 480 PPQ at 125 BPM, no time signature.
        assert_eq!(write(&performance), write_on_grid(&performance, &WriteGrid::MILLISECONDS));
        assert_eq!(WriteGrid::MILLISECONDS.ppq(), 480);
        assert_eq!(WriteGrid::MILLISECONDS.tempo_us(), 480_000);
    }
}
