//! Offline: a whole performance through a [`Piano`] into memory, and 32-bit float WAV files.

use super::{Decibels, Piano, Pitch, QUEUE, SampleRate, SampleSet, Velocity};
use crate::codec::Performance;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// Stereo audio in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stereo {
    pub sample_rate: u32,
    pub left: Vec<f32>,
    pub right: Vec<f32>,
}

impl Stereo {
    pub fn frames(&self) -> usize {
        self.left.len()
    }

    /// The largest absolute sample of both channels.
    pub fn peak(&self) -> f32 {
        self.left.iter().chain(&self.right).fold(0.0, |m, x| m.max(x.abs()))
    }
}

/// Frames per block of the offline render (what a host would use; events are sample-exact anyway).
const BLOCK: usize = 512;
/// After the performance ends (pedal lifted, keys released) rendering goes on until silence, at most this long.
const MAX_TAIL_SECONDS: f64 = 15.0;

#[derive(Debug, Clone, Copy)]
enum Event {
    Off(Pitch),
    Pedal(bool),
    On(Pitch, Velocity),
}

/// Renders `performance` at the default volume (see [`render_with`]).
pub fn render(performance: &Performance, samples: Arc<SampleSet>, sample_rate: SampleRate) -> Stereo {
    render_with(performance, samples, sample_rate, Decibels::DEFAULT)
}

/// Renders `performance` with the same [`Piano`] the plugin plays, sample-exact: each note starts
/// at the frame nearest its start time. Notes outside the 88 keys or with velocity 0 are skipped.
/// The audio runs on after the performance's end until it is silent (at most 15 s).
pub fn render_with(performance: &Performance, samples: Arc<SampleSet>, sample_rate: SampleRate, volume: Decibels) -> Stereo {
    let hz = sample_rate.hz() as f64;
    let frame = |seconds: f64| (seconds.max(0.0) * hz).round() as u64;
    // (frame, rank, arrival, event): at one frame, note-offs, then the pedal, then note-ons, as the codec orders them.
    let mut events: Vec<(u64, u8, usize, Event)> = Vec::with_capacity(performance.notes.len() * 2 + performance.pedal.len() + 1);
    for note in &performance.notes {
        let (Some(key), Some(velocity)) = (Pitch::new(note.pitch), Velocity::new(note.velocity)) else { continue };
        let on = frame(note.start);
        events.push((on, 2, events.len(), Event::On(key, velocity)));
        // A note lasts at least a frame (an off at its own onset would come before the on).
        events.push((frame(note.end).max(on + 1), 0, events.len(), Event::Off(key)));
    }
    for change in &performance.pedal {
        events.push((frame(change.time), 1, events.len(), Event::Pedal(change.down)));
    }
    let end = events.iter().map(|e| e.0).max().unwrap_or(0).max(frame(performance.duration));
    events.push((end, 3, events.len(), Event::Pedal(false)));
    events.sort_unstable_by_key(|&(frame, rank, seq, _)| (frame, rank, seq));

    let mut piano = Piano::new(samples, sample_rate);
    piano.set_volume(volume);
    let mut out = Stereo { sample_rate: hz.round() as u32, ..Stereo::default() };
    let last = end + (MAX_TAIL_SECONDS * hz) as u64;
    let (mut start, mut next) = (0u64, 0usize);
    let (mut left, mut right) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
    while start < last && (next < events.len() || piano.active_voices() > 0) {
        let mut stop = start + BLOCK as u64;
        let mut queued = 0;
        while let Some(&(at, _, _, event)) = events.get(next).filter(|e| e.0 < stop) {
            if queued == QUEUE {
                stop = at; // the rest goes to the next block, which starts at this event
                break;
            }
            let offset = (at - start) as u32;
            let pushed = match event {
                Event::On(key, velocity) => piano.note_on(offset, key, velocity),
                Event::Off(key) => piano.note_off(offset, key),
                Event::Pedal(down) => piano.pedal(offset, down),
            };
            debug_assert!(pushed.is_ok(), "at most QUEUE events per block");
            queued += 1;
            next += 1;
        }
        let n = (stop - start) as usize;
        piano.render(&mut left[..n], &mut right[..n]);
        out.left.extend_from_slice(&left[..n]);
        out.right.extend_from_slice(&right[..n]);
        start = stop;
    }
    out
}

/// Writes `audio` as a WAV file of 32-bit float samples (format 3, with the `fact` chunk that
/// non-PCM WAV requires). Errors in words when the audio is too long for WAV's 4 GB.
pub fn write_wav(mut out: impl Write, audio: &Stereo) -> io::Result<()> {
    let frames = audio.left.len().min(audio.right.len());
    let data_bytes = u32::try_from(frames * 8)
        .ok()
        .filter(|&bytes| bytes <= u32::MAX - 58)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the audio is too long for a WAV file (over 4 GB)"))?;
    let mut header = Vec::with_capacity(58);
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&(50 + data_bytes).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt ");
    header.extend_from_slice(&18u32.to_le_bytes());
    header.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&audio.sample_rate.to_le_bytes());
    header.extend_from_slice(&(audio.sample_rate.saturating_mul(8)).to_le_bytes());
    header.extend_from_slice(&8u16.to_le_bytes()); // bytes per frame
    header.extend_from_slice(&32u16.to_le_bytes());
    header.extend_from_slice(&0u16.to_le_bytes()); // no extension
    header.extend_from_slice(b"fact");
    header.extend_from_slice(&4u32.to_le_bytes());
    header.extend_from_slice(&(frames as u32).to_le_bytes());
    header.extend_from_slice(b"data");
    header.extend_from_slice(&data_bytes.to_le_bytes());
    out.write_all(&header)?;
    let mut data = Vec::with_capacity(frames * 8);
    for (l, r) in audio.left.iter().zip(&audio.right) {
        data.extend_from_slice(&l.to_le_bytes());
        data.extend_from_slice(&r.to_le_bytes());
    }
    out.write_all(&data)?;
    out.flush()
}

/// [`write_wav`] into a file.
pub fn write_wav_file(path: &Path, audio: &Stereo) -> io::Result<()> {
    let file = std::fs::File::create(path)?;
    write_wav(io::BufWriter::new(file), audio)
}
