//! The sample set: finding its folder, decoding Ogg Vorbis (lewton) on worker threads, shortening
//! and fading the notes, and measuring each layer's loudness. Never on the audio thread.

use super::layout::{self, CREDITS_FILE, FOLDER, HIGHEST_KEY, LOWEST_KEY, ROOTS};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable that names the sample folder (searched first, and alone when set).
pub const ENV_VAR: &str = "PIANOFORTE_SAMPLES";

/// Zero frames stored before and after each sample, so that the 4-point interpolator reads
/// frames i-1 ..= i+2 of any frame i without a bounds branch per channel.
pub(crate) const PAD_BEFORE: usize = 1;
const PAD_AFTER: usize = 2;

/// Frames per entry of a sample's table of how loud the rest of it gets.
const PEAK_BLOCK: usize = 1024;

/// One decoded recording: interleaved stereo 16-bit (half the memory of f32; the Ogg files are
/// lossy at 128 kbit/s, so 16 bits lose nothing audible), padded with zero frames.
pub(crate) struct Sample {
    data: Box<[i16]>,
    frames: usize,
    /// Per block of `PEAK_BLOCK` frames, the largest magnitude from that block to the end: what
    /// lets a voice stop rendering once the rest of its sample is inaudible.
    peak_from: Box<[u16]>,
}

impl Sample {
    /// From interleaved stereo frames (without padding).
    pub(crate) fn from_interleaved(pcm: &[i16]) -> Sample {
        let mut data = Vec::with_capacity(pcm.len() + (PAD_BEFORE + PAD_AFTER) * 2);
        data.resize(PAD_BEFORE * 2, 0);
        data.extend_from_slice(&pcm[..pcm.len() / 2 * 2]);
        Sample::from_padded(data)
    }

    /// From interleaved stereo frames behind `PAD_BEFORE` zero frames (no copy).
    fn from_padded(mut data: Vec<i16>) -> Sample {
        let frames = data.len() / 2 - PAD_BEFORE;
        data.truncate((PAD_BEFORE + frames) * 2);
        data.resize((PAD_BEFORE + frames + PAD_AFTER) * 2, 0);
        let peak_from = peaks_to_the_end(&data[PAD_BEFORE * 2..(PAD_BEFORE + frames) * 2]);
        Sample { data: data.into_boxed_slice(), frames, peak_from }
    }

    /// Length in frames (without padding).
    pub(crate) fn frames(&self) -> usize {
        self.frames
    }

    /// The interleaved frames without padding.
    fn audio(&self) -> &[i16] {
        &self.data[PAD_BEFORE * 2..(PAD_BEFORE + self.frames) * 2]
    }

    /// The padded interleaved data: frame `i` starts at `2 * (i + PAD_BEFORE)`.
    #[inline]
    pub(crate) fn padded(&self) -> &[i16] {
        &self.data
    }

    /// The largest magnitude of any sample from `frame` to the end (0 past the end).
    #[inline]
    pub(crate) fn peak_from(&self, frame: usize) -> u16 {
        self.peak_from.get(frame / PEAK_BLOCK).copied().unwrap_or(0)
    }
}

/// For each block of `PEAK_BLOCK` frames of interleaved stereo, the largest magnitude from that
/// block to the end.
fn peaks_to_the_end(audio: &[i16]) -> Box<[u16]> {
    let block_peak = |block: &[i16]| block.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
    let mut peaks: Vec<u16> = audio.chunks(2 * PEAK_BLOCK).map(block_peak).collect();
    for i in (1..peaks.len()).rev() {
        peaks[i - 1] = peaks[i - 1].max(peaks[i]);
    }
    peaks.into_boxed_slice()
}

/// Decoded piano samples, shared read-only by every [`Piano`](super::Piano) that plays them.
pub struct SampleSet {
    /// Sample rate of the recordings (48 kHz for Salamander).
    pub(crate) rate: u32,
    /// The sampled keys, ascending.
    pub(crate) roots: Vec<u8>,
    /// Onset loudness (RMS of the first 200 ms) in dB of each note, layer-major like `samples`:
    /// every note's layers are scaled to one velocity curve.
    pub(crate) note_db: Vec<f32>,
    /// Correlation of each note's onset with the next louder layer's (layer-major; 0 for the top):
    /// how loud the two are together.
    pub(crate) note_rho: Vec<f32>,
    /// The mean of `note_db` per layer, ascending: which layers a velocity sounds.
    pub(crate) layer_db: Vec<f32>,
    /// Notes, layer-major (`layer * roots.len() + root`), then one release noise per key 21..=108.
    pub(crate) samples: Vec<Sample>,
}

/// How to shorten the notes at load (the memory/length trade-off; see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// The Salamander layers to load (numbers 1..=16), softest first.
    pub layers: Vec<u8>,
    /// Notes are cut to at most this long, all layers of a key to the same length ...
    pub max_seconds: f32,
    /// ... and faded out over their last this many seconds (raised cosine).
    pub fade_seconds: f32,
    /// Decoder threads (capped by the machine's cores).
    pub threads: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { layers: layout::LAYERS.to_vec(), max_seconds: MAX_SECONDS, fade_seconds: FADE_SECONDS, threads: 4 }
    }
}

/// Default note length (measured trade-off, module docs): decoding is what load time is made of
/// (lewton decodes about 340 times real time on one core), so 7 s keeps 5 layers loading in
/// about 1.6 s on two cores, in 187 MB. The bass (recorded up to 25 s) is cut some 20 dB into
/// its decay, under a 1.5 s fade; the treble ends on its own before.
pub const MAX_SECONDS: f32 = 7.0;
pub const FADE_SECONDS: f32 = 1.5;

/// Why the samples cannot be used, in words a musician can act on.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadError {
    /// No sample folder in any of the searched places.
    NotFound { searched: Vec<PathBuf> },
    /// The folder lacks some files.
    Missing { folder: PathBuf, files: Vec<String> },
    /// A file cannot be read or decoded, or does not fit the set.
    Unusable { file: PathBuf, reason: String },
}

const HOW_TO_GET: &str = "in a source checkout run `cargo xtask samples` (it fetches them with npm into target/piano-samples), \
                          or set PIANOFORTE_SAMPLES to a folder holding them";

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotFound { searched } => {
                let places: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
                write!(f, "the piano samples are missing (looked in {}); {HOW_TO_GET}", places.join(", "))
            }
            LoadError::Missing { folder, files } => {
                let shown: Vec<&str> = files.iter().take(3).map(String::as_str).collect();
                let more = if files.len() > 3 { format!(" and {} more", files.len() - 3) } else { String::new() };
                let (count, folder) = (files.len(), folder.display());
                write!(f, "the piano samples are missing: {count} files are not in {folder} ({}{more}); {HOW_TO_GET}", shown.join(", "))
            }
            LoadError::Unusable { file, reason } => {
                write!(
                    f,
                    "the piano sample {} is unusable ({reason}); fetch the samples again with `cargo xtask samples --force`",
                    file.display()
                )
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Finds the sample folder. With `PIANOFORTE_SAMPLES` set, only that folder; otherwise the first
/// of `candidates` (e.g. beside the plugin binary), then `piano-samples` beside this executable
/// and one folder up (`target/release/../piano-samples`), then this checkout's
/// `target/piano-samples`, that holds the credits file `cargo xtask samples` writes last.
pub fn locate(candidates: &[PathBuf]) -> Result<PathBuf, LoadError> {
    if let Some(folder) = std::env::var_os(ENV_VAR) {
        let folder = PathBuf::from(folder);
        return if folder.is_dir() { Ok(folder) } else { Err(LoadError::NotFound { searched: vec![folder] }) };
    }
    let mut searched: Vec<PathBuf> = candidates.to_vec();
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
        searched.push(exe_dir.join(FOLDER));
        if let Some(up) = exe_dir.parent() {
            searched.push(up.join(FOLDER));
        }
    }
    searched.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join(FOLDER));
    match searched.iter().find(|folder| folder.join(CREDITS_FILE).is_file()) {
        Some(folder) => Ok(folder.clone()),
        None => Err(LoadError::NotFound { searched }),
    }
}

/// A decoded file: its rate and interleaved stereo, behind `PAD_BEFORE` zero frames.
struct Decoded {
    rate: u32,
    pcm: Vec<i16>,
}

impl Decoded {
    fn audio(&self) -> &[i16] {
        &self.pcm[PAD_BEFORE * 2..]
    }

    fn audio_mut(&mut self) -> &mut [i16] {
        &mut self.pcm[PAD_BEFORE * 2..]
    }

    fn frames(&self) -> usize {
        self.pcm.len() / 2 - PAD_BEFORE
    }
}

/// Decodes at most `max_frames` frames of an Ogg Vorbis file (mono is doubled to stereo); a note
/// (`attack`) loses the frames before its attack.
fn decode(path: &Path, max_frames: usize, attack: bool) -> Result<Decoded, String> {
    use lewton::inside_ogg::OggStreamReader;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut reader = OggStreamReader::new(std::io::Cursor::new(bytes)).map_err(|e| format!("not Ogg Vorbis: {e}"))?;
    let channels = reader.ident_hdr.audio_channels as usize;
    let rate = reader.ident_hdr.audio_sample_rate;
    if !(1..=2).contains(&channels) {
        return Err(format!("{channels} channels; expected mono or stereo"));
    }
    let end = (PAD_BEFORE + max_frames) * 2;
    // Room for the padding after, so that finishing the sample does not copy it.
    let mut pcm = Vec::with_capacity((end + PAD_AFTER * 2).min(1 << 22));
    pcm.resize(PAD_BEFORE * 2, 0);
    while pcm.len() < end {
        match reader.read_dec_packet_itl().map_err(|e| format!("corrupt Vorbis data: {e}"))? {
            Some(packet) if channels == 2 => pcm.extend_from_slice(&packet),
            Some(packet) => pcm.extend(packet.iter().flat_map(|&x| [x, x])),
            None => break,
        }
    }
    pcm.truncate(end);
    let mut decoded = Decoded { rate, pcm };
    if attack {
        let start = attack_start(decoded.audio(), rate);
        decoded.pcm.drain(PAD_BEFORE * 2..(PAD_BEFORE + start) * 2);
        fade_in(decoded.audio_mut(), rate as usize / 1000);
    }
    if decoded.frames() == 0 {
        return Err("no audio in the file".into());
    }
    Ok(decoded)
}

/// Decodes `files` on up to `threads` threads, largest files first (the bass notes are the
/// longest) so that the threads finish together. Results keep the order of `files`.
fn decode_all(files: &[(PathBuf, usize, bool)], threads: usize) -> Vec<Result<Decoded, String>> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    let size = |i: usize| std::fs::metadata(&files[i].0).map(|m| m.len()).unwrap_or(0);
    order.sort_by_key(|&i| std::cmp::Reverse(size(i)));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Decoded, String>>>> = Mutex::new((0..files.len()).map(|_| None).collect());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, cores) {
            scope.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (path, max_frames, attack) = &files[i];
                    // lewton is not expected to panic, but a bad file must never take the host down.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(path, *max_frames, *attack)))
                        .unwrap_or_else(|_| Err("the Vorbis decoder failed on it".into()));
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.into_iter().map(|r| r.unwrap_or_else(|| Err("not decoded".into()))).collect()
}

/// Multiplies the last `fade` frames of interleaved stereo by a raised-cosine fade to zero.
fn fade_out(pcm: &mut [i16], fade: usize) {
    let frames = pcm.len() / 2;
    let fade = fade.min(frames);
    for (k, frame) in pcm[(frames - fade) * 2..].chunks_exact_mut(2).enumerate() {
        let t = (k + 1) as f64 / fade as f64;
        let gain = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
        for x in frame {
            *x = (*x as f64 * gain).round() as i16;
        }
    }
}

/// Where the hammer strikes: the recordings begin 10-25 ms before it (key and action noise), but a
/// MIDI note should sound at its time. Returns the frame 2 ms before the first one above 5 % of
/// the peak of the first 200 ms.
fn attack_start(pcm: &[i16], rate: u32) -> usize {
    let head = &pcm[..(rate as usize / 5 * 2).min(pcm.len())];
    let peak = head.iter().map(|&x| (x as i32).abs()).max().unwrap_or(0);
    let first = head.iter().position(|&x| (x as i32).abs() * 20 > peak).unwrap_or(0) / 2;
    first.saturating_sub(rate as usize / 500)
}

/// Fades in over the first `fade` frames (raised cosine): the cut before the attack is not at a
/// zero crossing.
fn fade_in(pcm: &mut [i16], fade: usize) {
    let fade = fade.min(pcm.len() / 2);
    for (k, frame) in pcm[..fade * 2].chunks_exact_mut(2).enumerate() {
        let gain = 0.5 * (1.0 - (std::f64::consts::PI * k as f64 / fade as f64).cos());
        for x in frame {
            *x = (*x as f64 * gain).round() as i16;
        }
    }
}

/// The onset: the first 200 ms, where velocity shows (interleaved samples).
fn onset(pcm: &[i16], rate: u32) -> &[i16] {
    &pcm[..(pcm.len() / 2).min(rate as usize / 5) * 2]
}

/// RMS in dB of the onset.
fn onset_db(pcm: &[i16], rate: u32) -> f64 {
    let head = onset(pcm, rate);
    let sum: f64 = head.iter().map(|&x| (x as f64 / 32768.0).powi(2)).sum();
    10.0 * (sum / head.len().max(1) as f64).max(1e-12).log10()
}

/// Correlation coefficient of two recordings over their onsets (1: in phase, 0: unrelated).
fn onset_correlation(a: &[i16], b: &[i16], rate: u32) -> f32 {
    let (a, b) = (onset(a, rate), onset(b, rate));
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        (ab, aa, bb) = (ab + x * y, aa + x * x, bb + y * y);
    }
    (ab / (aa * bb).sqrt().max(1e-9)) as f32
}

/// Mono frames `from..from + n` of interleaved stereo as f32, zeros outside the recording.
fn mono(pcm: &[i16], from: isize, n: usize) -> Vec<f32> {
    let frames = (pcm.len() / 2) as isize;
    (from..from + n as isize)
        .map(|i| if (0..frames).contains(&i) { pcm[2 * i as usize] as f32 + pcm[2 * i as usize + 1] as f32 } else { 0.0 })
        .collect()
}

/// How many frames `x` lags `reference` (negative: leads), within `max_lag`: the lag with the
/// largest cross-correlation over the first `window` frames.
fn lag(reference: &[i16], x: &[i16], window: usize, max_lag: usize) -> isize {
    let r = mono(reference, 0, window);
    let x = mono(x, -(max_lag as isize), window + 2 * max_lag);
    let dot = |a: &[f32], b: &[f32]| {
        // Eight partial sums, so that the loop vectorises.
        let mut sums = [0.0f32; 8];
        for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
            for k in 0..8 {
                sums[k] += ca[k] * cb[k];
            }
        }
        sums.iter().sum::<f32>()
    };
    let scores = (0..=2 * max_lag).map(|k| (k, dot(&r, &x[k..k + window])));
    let best = scores.max_by(|a, b| a.1.total_cmp(&b.1)).map_or(max_lag, |(k, _)| k);
    best as isize - max_lag as isize
}

impl SampleSet {
    /// Loads the default layers from `folder` (see [`locate`]).
    pub fn load(folder: &Path) -> Result<SampleSet, LoadError> {
        SampleSet::load_with(folder, &LoadOptions::default())
    }

    pub fn load_with(folder: &Path, options: &LoadOptions) -> Result<SampleSet, LoadError> {
        if options.layers.is_empty() {
            return Err(LoadError::Unusable { file: folder.to_path_buf(), reason: "no velocity layers chosen".into() });
        }
        let note_files: Vec<String> =
            options.layers.iter().flat_map(|&layer| ROOTS.iter().map(move |&(stem, _)| layout::note_file(stem, layer))).collect();
        let release_files: Vec<String> = (LOWEST_KEY..=HIGHEST_KEY).map(layout::release_file).collect();
        let missing: Vec<String> = note_files.iter().chain(&release_files).filter(|name| !folder.join(name).is_file()).cloned().collect();
        if !missing.is_empty() {
            return Err(LoadError::Missing { folder: folder.to_path_buf(), files: missing });
        }
        // Every file decodes at most this many frames (counted at Salamander's 48 kHz).
        let max_frames = (options.max_seconds.max(0.1) * 48_000.0) as usize;
        let jobs: Vec<(PathBuf, usize, bool)> = note_files
            .iter()
            .map(|name| (folder.join(name), max_frames, true))
            .chain(release_files.iter().map(|name| (folder.join(name), 48_000 * 4, false)))
            .collect();
        let mut decoded = Vec::with_capacity(jobs.len());
        for ((path, ..), result) in jobs.iter().zip(decode_all(&jobs, options.threads)) {
            decoded.push(result.map_err(|reason| LoadError::Unusable { file: path.clone(), reason })?);
        }
        let rate = decoded[0].rate;
        if let Some((i, d)) = decoded.iter().enumerate().find(|(_, d)| d.rate != rate) {
            let reason = format!("sampled at {} Hz, the others at {rate} Hz", d.rate);
            return Err(LoadError::Unusable { file: jobs[i].0.clone(), reason });
        }

        let (roots, layers) = (ROOTS.len(), options.layers.len());
        let fade = (options.fade_seconds * rate as f32) as usize;
        let (mut note_db, mut note_rho) = (vec![0.0; layers * roots], vec![0.0; layers * roots]);
        for root in 0..roots {
            // A voice mixes two neighbouring layers: each is shifted onto the next louder one
            // (within 3 ms, on the first 50 ms), so that the two add rather than cancel.
            for layer in (0..layers.saturating_sub(1)).rev() {
                let (softer, louder) = decoded.split_at_mut((layer + 1) * roots + root);
                let (note, reference) = (&mut softer[layer * roots + root], &louder[0]);
                let shift = lag(reference.audio(), note.audio(), rate as usize / 20, rate as usize * 3 / 1000);
                let at = PAD_BEFORE * 2;
                match shift {
                    0.. => drop(note.pcm.drain(at..at + (shift as usize * 2).min(note.pcm.len() - at))),
                    _ => drop(note.pcm.splice(at..at, std::iter::repeat_n(0, shift.unsigned_abs() * 2))),
                }
            }
            // All layers of a key get one length (the shortest, within the cap), so a voice
            // mixing two layers ends both together, and the fade hides the cut.
            let length = (0..layers).map(|layer| decoded[layer * roots + root].frames()).min().unwrap_or(0);
            for layer in 0..layers {
                let note = &mut decoded[layer * roots + root];
                note.pcm.truncate((PAD_BEFORE + length) * 2);
                fade_out(note.audio_mut(), fade.min(length / 4));
                note_db[layer * roots + root] = onset_db(note.audio(), rate) as f32;
            }
            for layer in 0..layers.saturating_sub(1) {
                let (note, louder) = (&decoded[layer * roots + root], &decoded[(layer + 1) * roots + root]);
                note_rho[layer * roots + root] = onset_correlation(note.audio(), louder.audio(), rate);
            }
        }
        let layer_db: Vec<f32> = note_db.chunks(roots).map(|layer| layer.iter().sum::<f32>() / roots as f32).collect();
        for release in &mut decoded[layers * roots..] {
            fade_out(release.audio_mut(), rate as usize / 100);
        }
        if let Some(w) = layer_db.windows(2).position(|w| w[1] <= w[0]) {
            let reason = format!("layer v{} is not louder than layer v{}", options.layers[w + 1], options.layers[w]);
            return Err(LoadError::Unusable { file: folder.to_path_buf(), reason });
        }
        let samples = decoded.into_iter().map(|d| Sample::from_padded(d.pcm)).collect();
        Ok(SampleSet { rate, roots: ROOTS.iter().map(|&(_, key)| key).collect(), note_db, note_rho, layer_db, samples })
    }

    /// Synthetic stand-ins for the recordings (for tests and benchmarks without the samples):
    /// decaying harmonic tones at every root, `layers` layers 6 dB apart (louder is brighter),
    /// `seconds` long, and a short noise burst as each key's release noise. Deterministic.
    pub fn test_tones(layers: usize, seconds: f32) -> SampleSet {
        let layers = layers.max(1);
        let rate = 48_000u32;
        let frames = (seconds * rate as f32) as usize;
        let roots: Vec<u8> = ROOTS.iter().map(|&(_, key)| key).collect();
        let mut samples = Vec::new();
        let mut note_db = Vec::new();
        for layer in 0..layers {
            let amplitude = 0.5 * 0.5f64.powi((layers - 1 - layer) as i32);
            for &key in &roots {
                let f0 = 440.0 * 2f64.powf((key as f64 - 69.0) / 12.0);
                let decay = 1.5 / (1.0 + f0 / 400.0); // seconds to 1/e: shorter in the treble
                let pcm: Vec<i16> = (0..frames)
                    .flat_map(|n| {
                        let t = n as f64 / rate as f64;
                        let bright = 0.15 * (layer + 1) as f64 / layers as f64;
                        let w = std::f64::consts::TAU * f0 * t;
                        let x = amplitude * (-t / decay).exp() * (w.sin() + bright * (2.0 * w).sin()) / (1.0 + bright);
                        // Slightly different channels, as in a stereo recording.
                        let y = x * (0.9 + 0.1 * (key % 2) as f64);
                        [(x * 32767.0).round() as i16, (y * 32767.0).round() as i16]
                    })
                    .collect();
                note_db.push(onset_db(&pcm, rate) as f32);
                samples.push(Sample::from_interleaved(&pcm));
            }
        }
        let layer_db = note_db.chunks(roots.len()).map(|layer| layer.iter().sum::<f32>() / roots.len() as f32).collect();
        let note_rho = (0..samples.len())
            .map(|i| {
                samples.get(i + roots.len()).map_or(0.0, |louder: &Sample| onset_correlation(samples[i].audio(), louder.audio(), rate))
            })
            .collect();
        let mut noise = 0x1234_5678u32;
        for _ in LOWEST_KEY..=HIGHEST_KEY {
            let pcm: Vec<i16> = (0..rate as usize / 10)
                .flat_map(|n| {
                    noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let x = ((noise >> 16) as f64 / 32768.0 - 1.0) * 0.05 * (1.0 - n as f64 * 10.0 / rate as f64);
                    [(x * 32767.0) as i16; 2]
                })
                .collect();
            samples.push(Sample::from_interleaved(&pcm));
        }
        SampleSet { rate, roots, note_db, note_rho, layer_db, samples }
    }

    /// Bytes of decoded audio held (what dominates the resident memory of a loaded set).
    pub fn memory_bytes(&self) -> usize {
        self.samples.iter().map(|s| s.data.len() * size_of::<i16>()).sum()
    }

    /// The number of velocity layers.
    pub fn layers(&self) -> usize {
        self.layer_db.len()
    }

    /// Onset loudness of each layer in dB, softest first.
    pub fn layer_loudness_db(&self) -> &[f32] {
        &self.layer_db
    }

    /// Sample rate of the recordings.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    pub(crate) fn note(&self, layer: usize, root: usize) -> usize {
        layer * self.roots.len() + root
    }

    pub(crate) fn release(&self, key: u8) -> usize {
        self.layer_db.len() * self.roots.len() + (key - LOWEST_KEY) as usize
    }

    pub(crate) fn sample(&self, index: usize) -> &Sample {
        &self.samples[index]
    }
}
