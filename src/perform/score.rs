//! Scores: any MIDI file a DAW or a notation program writes, read as the part a pianist must
//! play: its notes in quarter notes and in seconds of its own tempo map, its tempo map and its
//! time signatures.
//!
//! Every track and channel is one piano part, except channel 10 (drums, ignored). What cannot be
//! played as written is said in `notices`: notes outside the piano's keys (dropped), overlapping
//! notes of one key (the earlier ends where the later begins), one key struck twice at once (two
//! voices: played once), zero-length notes (kept: the performance gives them a length), notes
//! never released (held to the end).

use crate::codec::Pitch;
use crate::codec::midi::{MAX_DURATION_SECONDS, MAX_FILE_BYTES};
use crate::engine::Meter;
use midly::{Format, MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};

/// The drum channel (channel 10, counted from 1).
const DRUM_CHANNEL: u8 = 9;
/// Quarter notes per minute of a file without a tempo (the MIDI default).
pub const DEFAULT_BPM: f64 = 120.0;

/// One note of the score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreNote {
    pub pitch: Pitch,
    /// As written (notation programs write their dynamics here; a piano roll often 100 throughout).
    pub velocity: u8,
    /// Where it starts and ends, in quarter notes from the file's start.
    pub start: f64,
    pub end: f64,
}

/// A piano part with its tempo map and meters.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// In start order, equal starts by pitch.
    pub notes: Vec<ScoreNote>,
    /// (quarter note, quarter notes per minute) from there on; the first at 0.
    pub tempos: Vec<(f64, f64)>,
    /// (quarter note, meter) from there on, each starting a bar; the first at 0.
    pub meters: Vec<(f64, Meter)>,
    /// What was dropped or changed, for people.
    pub notices: Vec<String>,
}

impl Score {
    /// Reads a standard MIDI file; an unreadable file or one without notes is an error in words.
    pub fn read(bytes: &[u8]) -> Result<Score, String> {
        if bytes.is_empty() {
            return Err("the file is empty".into());
        }
        if bytes.len() > MAX_FILE_BYTES {
            return Err(format!("the file is too large ({} bytes, limit {MAX_FILE_BYTES})", bytes.len()));
        }
        let smf = Smf::parse(bytes).map_err(|e| format!("not a readable MIDI file: {e}"))?;
        if smf.header.format == Format::Sequential {
            return Err("format-2 MIDI (independent sequences) is not one part".into());
        }
        let ppq = match smf.header.timing {
            Timing::Metrical(ppq) if ppq.as_int() > 0 => ppq.as_int() as f64,
            Timing::Metrical(_) => return Err("the file has zero ticks per quarter note".into()),
            Timing::Timecode(..) => return Err("the file counts time in SMPTE frames, not in beats: it is not a score".into()),
        };
        // Every track's events in time order (a stable sort keeps each tick's events in track order),
        // so that notes of one key in different tracks meet as they sound.
        let mut events = Vec::new();
        let mut end = 0u64;
        for track in &smf.tracks {
            let mut tick = 0u64;
            for event in track {
                tick += event.delta.as_int() as u64;
                events.push((tick, event.kind));
            }
            end = end.max(tick);
        }
        events.sort_by_key(|&(tick, _)| tick);
        let mut reader = Reader { end: end as f64 / ppq, ..Reader::default() };
        for (tick, kind) in &events {
            reader.event(*tick as f64 / ppq, kind);
        }
        reader.finish()
    }

    /// The tempo (quarter notes per minute) at `quarters`.
    pub fn bpm_at(&self, quarters: f64) -> f64 {
        let i = self.tempos.partition_point(|&(q, _)| q <= quarters).saturating_sub(1);
        self.tempos[i].1
    }

    /// Seconds of the score's own tempo map at `quarters`.
    pub fn seconds_at(&self, quarters: f64) -> f64 {
        let mut seconds = 0.0;
        for (i, &(from, bpm)) in self.tempos.iter().enumerate() {
            let to = self.tempos.get(i + 1).map_or(f64::INFINITY, |t| t.0).min(quarters);
            if to <= from {
                break;
            }
            seconds += (to - from) * 60.0 / bpm;
        }
        seconds
    }

    /// Where `quarters` lies in beats and bars.
    pub fn place(&self, quarters: f64) -> Place {
        let i = self.meters.partition_point(|&(q, _)| q <= quarters).saturating_sub(1);
        let (from, meter) = self.meters[i];
        let beats = (quarters - from) / meter.beat_quarters();
        let per_bar = meter.beats_per_bar() as f64;
        // Beats counted from the last meter change, which began a bar.
        let in_bar = beats.rem_euclid(per_bar);
        Place { beat_in_bar: in_bar, beats_per_bar: meter.beats_per_bar(), beat_quarters: meter.beat_quarters() }
    }
}

/// A moment's place in the bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Place {
    /// Beats since the bar began (fractional).
    pub beat_in_bar: f64,
    pub beats_per_bar: u16,
    /// The beat's length in quarter notes.
    pub beat_quarters: f64,
}

/// Gathers the events of every track.
#[derive(Default)]
struct Reader {
    /// The sounding note of each key, by channel (a note-off ends its own channel's note).
    sounding: Vec<[Option<usize>; 128]>,
    /// The last note struck on each key.
    last_struck: Vec<Option<usize>>,
    notes: Vec<ScoreNote>,
    tempos: Vec<(f64, f64)>,
    meters: Vec<(f64, Meter)>,
    end: f64,
    drums: usize,
    out_of_range: usize,
    overlapping: usize,
    doubled: usize,
    bad_meters: usize,
}

impl Reader {
    fn event(&mut self, at: f64, kind: &TrackEventKind) {
        if self.sounding.is_empty() {
            self.sounding = vec![[None; 128]; 16];
            self.last_struck = vec![None; 128];
        }
        match *kind {
            TrackEventKind::Midi { channel, .. } if channel.as_int() == DRUM_CHANNEL => {
                if let TrackEventKind::Midi { message: MidiMessage::NoteOn { vel, .. }, .. } = kind
                    && vel.as_int() > 0
                {
                    self.drums += 1;
                }
            }
            TrackEventKind::Midi { channel, message: MidiMessage::NoteOn { key, vel } } if vel.as_int() > 0 => {
                self.press(at, channel.as_int() as usize, key.as_int(), vel.as_int())
            }
            TrackEventKind::Midi { channel, message: MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } } => {
                if let Some(i) = self.sounding[channel.as_int() as usize][key.as_int() as usize].take() {
                    self.notes[i].end = at;
                }
            }
            TrackEventKind::Meta(MetaMessage::Tempo(us)) if us.as_int() > 0 => self.tempos.push((at, 60e6 / us.as_int() as f64)),
            TrackEventKind::Meta(MetaMessage::TimeSignature(n, d, ..)) => match (d < 6).then(|| Meter::new(n as u16, 1 << d)).flatten() {
                Some(meter) => self.meters.push((at, meter)),
                None => self.bad_meters += 1,
            },
            _ => {}
        }
    }

    fn press(&mut self, at: f64, channel: usize, key: u8, velocity: u8) {
        let Some(pitch) = Pitch::new(key) else {
            self.out_of_range += 1;
            return;
        };
        // Struck again at the same moment (two voices, or a zero-length note and a note): played
        // once, released with the later voice.
        if let Some(i) = self.last_struck[key as usize].filter(|&i| self.notes[i].start == at) {
            self.doubled += 1;
            for c in 0..self.sounding.len() {
                if self.sounding[c][key as usize] == Some(i) {
                    self.sounding[c][key as usize] = None;
                }
            }
            self.notes[i].end = f64::NAN;
            self.sounding[channel][key as usize] = Some(i);
            return;
        }
        // One piano key: a note of this key sounding on any channel ends here.
        for c in 0..self.sounding.len() {
            if let Some(i) = self.sounding[c][key as usize].take() {
                self.notes[i].end = at;
                self.overlapping += 1;
            }
        }
        self.last_struck[key as usize] = Some(self.notes.len());
        self.sounding[channel][key as usize] = Some(self.notes.len());
        self.notes.push(ScoreNote { pitch, velocity, start: at, end: f64::NAN });
    }

    fn finish(mut self) -> Result<Score, String> {
        let mut notices = Vec::new();
        let held = self.notes.iter().filter(|n| n.end.is_nan()).count();
        for note in self.notes.iter_mut().filter(|n| n.end.is_nan()) {
            note.end = self.end;
        }
        let zero = self.notes.iter().filter(|n| n.end <= n.start).count();
        let mut say = |count: usize, what: &str| {
            if count > 0 {
                notices.push(format!("{count} {what}"));
            }
        };
        say(self.drums, "notes on channel 10 (drums) ignored");
        say(self.out_of_range, "notes outside the piano's keys (A0..C8) dropped");
        say(self.overlapping, "overlapping notes of one key: each ends where the next of its key begins");
        say(self.doubled, "notes struck twice at once on one key (two voices, or a zero-length note and a note): played once");
        say(zero, "zero-length notes: played short");
        say(held, "notes never released: held to the end");
        say(self.bad_meters, "time signatures no pianist counts (denominator above 32) ignored");
        if self.notes.is_empty() {
            let why = if notices.is_empty() { String::new() } else { format!(" ({})", notices.join("; ")) };
            return Err(format!("the file has no notes to play{why}"));
        }
        self.notes.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
        let score = Score {
            notes: self.notes,
            tempos: from_zero(self.tempos, DEFAULT_BPM),
            meters: from_zero(self.meters, Meter::FOUR_FOUR),
            notices,
        };
        let seconds = score.seconds_at(score.notes.iter().map(|n| n.end).fold(0.0, f64::max));
        if seconds > MAX_DURATION_SECONDS {
            return Err(format!("absurd duration ({:.0} h) from the tempo map", seconds / 3600.0));
        }
        Ok(score)
    }
}

/// Changes in order, one per position (the last written wins), the first at 0 (`default` where
/// the file says nothing before its first change).
fn from_zero<T: Copy>(mut changes: Vec<(f64, T)>, default: T) -> Vec<(f64, T)> {
    changes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, T)> = Vec::with_capacity(changes.len() + 1);
    for (at, value) in changes {
        match out.last_mut() {
            Some(last) if last.0 == at => last.1 = value,
            _ => out.push((at, value)),
        }
    }
    if out.first().is_none_or(|first| first.0 > 0.0) {
        out.insert(0, (0.0, default));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use midly::num::{u4, u7, u15, u24, u28};
    use midly::{Header, MidiMessage, TrackEvent};

    /// A file of `tracks`, each a list of (tick, event); 480 ticks a quarter note.
    fn midi(tracks: Vec<Vec<(u32, TrackEventKind<'static>)>>) -> Vec<u8> {
        let tracks: Vec<Vec<TrackEvent>> = tracks
            .into_iter()
            .map(|mut events| {
                events.sort_by_key(|e| e.0);
                let mut now = 0;
                let mut track: Vec<TrackEvent> = events
                    .into_iter()
                    .map(|(tick, kind)| {
                        let delta = tick - now;
                        now = tick;
                        TrackEvent { delta: u28::new(delta), kind }
                    })
                    .collect();
                track.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
                track
            })
            .collect();
        let header = Header::new(if tracks.len() > 1 { Format::Parallel } else { Format::SingleTrack }, Timing::Metrical(u15::new(480)));
        let mut out = Vec::new();
        midly::write_std(&header, tracks.iter(), &mut out).unwrap();
        out
    }

    fn on(channel: u8, key: u8) -> TrackEventKind<'static> {
        TrackEventKind::Midi { channel: u4::new(channel), message: MidiMessage::NoteOn { key: u7::new(key), vel: u7::new(90) } }
    }

    fn off(channel: u8, key: u8) -> TrackEventKind<'static> {
        TrackEventKind::Midi { channel: u4::new(channel), message: MidiMessage::NoteOff { key: u7::new(key), vel: u7::new(0) } }
    }

    #[test]
    fn notes_tempo_map_and_meters_come_from_every_track_in_time_order() {
        let conductor = vec![
            (0, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000)))),
            (0, TrackEventKind::Meta(MetaMessage::TimeSignature(6, 3, 24, 8))),
            (1920, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(1_000_000)))),
        ];
        let right = vec![(0, on(0, 72)), (480, off(0, 72)), (480, on(0, 60)), (1440, off(0, 60)), (2400, on(0, 76)), (2880, off(0, 76))];
        // Another track on channel 2 strikes 60 again while the first 60 sounds; drums on 10.
        let left = vec![(960, on(1, 60)), (1920, off(1, 60)), (0, on(9, 36)), (100, off(9, 36)), (0, on(0, 12))];
        let score = Score::read(&midi(vec![conductor, right, left])).unwrap();
        let keys: Vec<(u8, f64, f64)> = score.notes.iter().map(|n| (n.pitch.midi(), n.start, n.end)).collect();
        assert_eq!(keys, vec![(72, 0.0, 1.0), (60, 1.0, 2.0), (60, 2.0, 4.0), (76, 5.0, 6.0)]);
        assert_eq!(score.notices.len(), 3, "{:?}", score.notices);
        assert!(score.notices.iter().any(|n| n.contains("drums")) && score.notices.iter().any(|n| n.contains("overlapping")));
        assert!(score.notices.iter().any(|n| n.contains("outside the piano's keys")));
        // 120 BPM for 4 quarters (2 s), then 60 BPM.
        assert_eq!((score.bpm_at(3.9), score.bpm_at(4.0)), (120.0, 60.0));
        assert!((score.seconds_at(5.0) - 3.0).abs() < 1e-12);
        // 6/8: beats of a dotted quarter, two a bar.
        let place = score.place(4.5);
        assert_eq!((place.beat_in_bar, place.beats_per_bar, place.beat_quarters), (1.0, 2, 1.5));
    }

    #[test]
    fn unisons_zero_lengths_and_hanging_notes_are_played_and_said() {
        let track = vec![
            (0, on(0, 60)),
            (0, on(1, 60)),
            (480, off(0, 60)),
            (480, on(0, 64)),
            (480, off(0, 64)),
            (960, on(0, 67)),
            (1440, on(0, 72)),
            (1440, off(0, 72)),
            (1440, on(0, 72)),
            (1920, off(0, 72)),
        ];
        let score = Score::read(&midi(vec![track])).unwrap();
        let keys: Vec<(u8, f64, f64)> = score.notes.iter().map(|n| (n.pitch.midi(), n.start, n.end)).collect();
        // Two voices on 60 at once: one note, released with the later voice (never: to the end);
        // a zero-length 72 and a 72 at once: one note.
        assert_eq!(keys, vec![(60, 0.0, 4.0), (64, 1.0, 1.0), (67, 2.0, 4.0), (72, 3.0, 4.0)]);
        let said = score.notices.join("; ");
        assert!(said.contains("two voices") && said.contains("zero-length") && said.contains("never released"), "{said}");
        assert_eq!(score.meters, vec![(0.0, Meter::FOUR_FOUR)]);
        assert_eq!(score.tempos, vec![(0.0, DEFAULT_BPM)]);
    }

    #[test]
    fn files_without_notes_or_beats_are_refused_in_words() {
        assert_eq!(Score::read(&[]).unwrap_err(), "the file is empty");
        assert!(Score::read(b"MThd junk").unwrap_err().contains("not a readable MIDI file"));
        let drums = midi(vec![vec![(0, on(9, 36)), (100, off(9, 36))]]);
        let error = Score::read(&drums).unwrap_err();
        assert!(error.contains("no notes to play") && error.contains("drums"), "{error}");
        let header = Header::new(Format::SingleTrack, Timing::Timecode(midly::Fps::Fps25, 40));
        let mut smpte = Vec::new();
        let track = vec![TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) }];
        midly::write_std(&header, [&track], &mut smpte).unwrap();
        assert!(Score::read(&smpte).unwrap_err().contains("SMPTE"));
    }
}
