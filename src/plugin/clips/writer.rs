//! The clip writer: the editor's file work, on a thread of the plugin instance (owned through
//! `Shared::threads`), so that the editor's thread never waits on a disk. It saves clips, looks
//! which remembered clips still exist, and performs scores dropped on the editor (Perform my
//! part); the editor sends it jobs and reads what it publishes without blocking.
//!
//! A saved clip enters the remembered list (`PianoforteParams::remember_clip`) and its message
//! goes to `Shared::clip_message` from the writer's thread, so a save finishes even when the
//! editor closes meanwhile.

use super::{ClipLength, clips_folder, default_clips_folder, save_clip_with, write_clip};
use crate::plugin::params::PianoforteParams;
use crate::plugin::perform::perform_file;
use crate::plugin::shared::{Shared, relock};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How often an idle writer looks whether the plugin is closing.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// How a file is written: `std::fs::write`, or a slow one in tests.
pub type WriteFile = fn(&Path, &[u8]) -> std::io::Result<()>;

enum Job {
    /// A clip of `length` of the take, ending at performance-clock time `now`, into the clips
    /// folder `folder` (as typed; empty: the default one).
    Save { now: f64, length: ClipLength, folder: String },
    /// Which of these files exist.
    Check(Vec<String>),
    /// Perform the score in the MIDI file `path` (seeded by `seed`), save it into the clips folder
    /// `folder` and have the engine thread play it (through `performed-clip`).
    Perform { path: PathBuf, seed: u64, folder: String },
}

/// What the writer thread works with, and what it publishes.
struct Desk {
    shared: Arc<Shared>,
    params: Arc<PianoforteParams>,
    write_file: WriteFile,
    /// The last check: each path with whether its file exists.
    checked: Mutex<Vec<(String, bool)>>,
    /// A check is queued or running (the editor does not pile them up behind a slow disk).
    checking: AtomicBool,
    /// The default clips folder (finding it reads the user's folder settings).
    default_folder: OnceLock<PathBuf>,
    /// Where the plugin binary lies (ONNX Runtime is looked for there).
    plugin_folder: Option<PathBuf>,
}

/// The editor's handle on its writer thread (started with the first job).
pub struct ClipWriter {
    desk: Arc<Desk>,
    jobs: Option<Sender<Job>>,
}

impl ClipWriter {
    pub fn new(shared: Arc<Shared>, params: Arc<PianoforteParams>) -> Self {
        Self::with_write_file(shared, params, |path, bytes| std::fs::write(path, bytes))
    }

    /// A writer that writes files with `write_file` (tests: a slow disk).
    pub fn with_write_file(shared: Arc<Shared>, params: Arc<PianoforteParams>, write_file: WriteFile) -> Self {
        let desk = Desk {
            shared,
            params,
            write_file,
            checked: Mutex::default(),
            checking: AtomicBool::new(false),
            default_folder: OnceLock::new(),
            plugin_folder: crate::plugin::locate::own_folder(),
        };
        ClipWriter { desk: Arc::new(desk), jobs: None }
    }

    /// Saves a clip of `length` of the take, ending at performance-clock time `now`, into the
    /// clips folder `folder` (as typed; empty: the default one); the outcome comes as
    /// `Shared::clip_message`.
    pub fn save(&mut self, now: f64, length: ClipLength, folder: String) {
        if let Err(e) = self.send(Job::Save { now, length, folder }) {
            *relock(&self.desk.shared.clip_message) = Some(Err(e));
        }
    }

    /// Performs the score in the MIDI file `path` (a clip dropped on the editor), saves the
    /// performance as a clip and has the engine thread play it; the outcome comes as
    /// `Shared::clip_message`.
    pub fn perform(&mut self, path: PathBuf, seed: u64, folder: String) {
        if let Err(e) = self.send(Job::Perform { path, seed, folder }) {
            *relock(&self.desk.shared.clip_message) = Some(Err(e));
        }
    }

    /// Asks which of `paths` exist, unless a check is under way; see [`ClipWriter::checked`].
    pub fn check(&mut self, paths: Vec<String>) {
        if !self.desk.checking.swap(true, Ordering::AcqRel) && self.send(Job::Check(paths)).is_err() {
            self.desk.checking.store(false, Ordering::Release);
        }
    }

    /// The default clips folder, once the writer has found it (it does as it starts).
    pub fn default_folder(&self) -> Option<&Path> {
        self.desk.default_folder.get().map(PathBuf::as_path)
    }

    /// Whether a check is queued or running.
    pub fn checking(&self) -> bool {
        self.desk.checking.load(Ordering::Acquire)
    }

    /// The last check's answers (None while the writer is storing new ones: a moment).
    pub fn checked(&self) -> Option<Vec<(String, bool)>> {
        self.desk.checked.try_lock().ok().map(|c| c.clone())
    }

    /// Sends a job, starting the thread when it does not run (first job, or after it ended).
    fn send(&mut self, job: Job) -> Result<(), String> {
        let job = match &self.jobs {
            Some(jobs) => match jobs.send(job) {
                Ok(()) => return Ok(()),
                Err(unsent) => unsent.0, // the thread ended: start another
            },
            None => job,
        };
        let (jobs, receiver) = channel();
        let desk = self.desk.clone();
        self.desk.shared.threads.spawn("pianoforte-clips", move || desk.serve(receiver))?;
        jobs.send(job).map_err(|_| "the clip writer stopped".to_string())?;
        self.jobs = Some(jobs);
        Ok(())
    }
}

impl Desk {
    /// The thread: one job after another until the editor goes or the plugin closes.
    fn serve(&self, jobs: Receiver<Job>) {
        self.default_folder.get_or_init(default_clips_folder);
        while !self.shared.threads.stopping() {
            match jobs.recv_timeout(IDLE_POLL) {
                Ok(Job::Save { now, length, folder }) => self.save(now, length, &folder),
                Ok(Job::Check(paths)) => self.check(paths),
                Ok(Job::Perform { path, seed, folder }) => self.perform(&path, seed, &folder),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn save(&self, now: f64, length: ClipLength, folder: &str) {
        // The take is copied under its lock; the file is written after (issue 9).
        let saved = save_clip_with(&self.shared.take, now, length, &clips_folder(folder), self.write_file);
        let message = saved.map(|clip| {
            self.params.remember_clip(&clip.path);
            format!("saved {} ({} notes)", clip.path.display(), clip.notes)
        });
        *relock(&self.shared.clip_message) = Some(message);
    }

    fn perform(&self, path: &Path, seed: u64, folder: &str) {
        let message = perform_file(path, seed, self.plugin_folder.as_deref()).and_then(|performed| {
            let saved = write_clip(&performed.clip, &clips_folder(folder), self.write_file)?;
            self.params.remember_clip(&saved.path);
            self.params.set_performed_clip(&saved.path.display().to_string());
            self.shared.rt.wake_engine();
            let notices = performed.notices.iter().map(|n| format!("; {n}")).collect::<String>();
            Ok(format!("performed: saved {} ({} notes){notices}", saved.path.display(), saved.notes))
        });
        *relock(&self.shared.clip_message) = Some(message);
    }

    fn check(&self, paths: Vec<String>) {
        let checked = paths.into_iter().map(|p| (p.clone(), Path::new(&p).exists())).collect();
        *relock(&self.checked) = checked;
        self.checking.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::clips::Take;
    use crate::plugin::events::{Midi, Played};
    use std::time::Instant;

    /// A disk that takes its time: a write takes 2 s, or until `SLOW_DISK_OPEN` is set.
    static SLOW_DISK_OPEN: AtomicBool = AtomicBool::new(false);

    fn slow_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let began = Instant::now();
        while !SLOW_DISK_OPEN.load(Ordering::Acquire) && began.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::fs::write(path, bytes)
    }

    fn wait_for<T>(what: impl Fn() -> Option<T>) -> T {
        let began = Instant::now();
        loop {
            if let Some(found) = what() {
                return found;
            }
            assert!(began.elapsed() < Duration::from_secs(5), "the writer did not answer");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn saving_and_checking_happen_off_the_callers_thread() {
        // Issue 18: the editor wrote clips and looked at up to 200 files on its own thread.
        let shared = Arc::new(Shared::default());
        let params = Arc::new(PianoforteParams::default());
        {
            let mut take = relock(&shared.take);
            *take = Take::new();
            take.push(Played { time: 1.0, midi: Midi::NoteOn { key: 60, velocity: 80 }, input: false });
            take.push(Played { time: 2.0, midi: Midi::NoteOff { key: 60 }, input: false });
        }
        let folder = std::env::temp_dir().join(format!("pianoforte-writer-test-{}", std::process::id()));
        let mut writer = ClipWriter::with_write_file(shared.clone(), params.clone(), slow_write);

        let began = Instant::now();
        writer.save(3.0, ClipLength::WholeTake, folder.display().to_string());
        assert!(began.elapsed() < Duration::from_millis(500), "save returns while the disk is busy");
        assert!(params.clips().is_empty() && relock(&shared.clip_message).is_none());
        SLOW_DISK_OPEN.store(true, Ordering::Release);
        let message = wait_for(|| relock(&shared.clip_message).clone());
        assert!(message.as_ref().is_ok_and(|m| m.starts_with("saved ")), "{message:?}");
        let saved = params.clips();
        assert_eq!(saved.len(), 1, "the clip is remembered by the writer");
        assert!(writer.default_folder().is_some());

        let missing = folder.join("gone.mid").display().to_string();
        writer.check(vec![saved[0].clone(), missing.clone()]);
        wait_for(|| (!writer.checking()).then_some(()));
        assert_eq!(writer.checked(), Some(vec![(saved[0].clone(), true), (missing, false)]));

        // The writer ends with the plugin.
        shared.threads.join_all();
        assert_eq!(shared.threads.count(), 0);
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[test]
    fn a_dropped_score_is_performed_saved_and_given_to_the_engine() {
        use crate::codec::{Note, Performance};
        let shared = Arc::new(Shared::default());
        let params = Arc::new(PianoforteParams::default());
        let folder = std::env::temp_dir().join(format!("pianoforte-perform-test-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        // A flat part: a scale in quarter notes at velocity 100, then a chord.
        let mut notes: Vec<Note> =
            (0..8).map(|i| Note { pitch: 60 + i, velocity: 100, start: i as f64 * 0.5, end: i as f64 * 0.5 + 0.5 }).collect();
        notes.extend([55, 59, 62].map(|pitch| Note { pitch, velocity: 100, start: 4.0, end: 6.0 }));
        let part = folder.join("my part.mid");
        std::fs::write(&part, crate::codec::midi::write(&Performance { notes, pedal: Vec::new(), duration: 6.0 })).unwrap();
        let junk = folder.join("junk.mid");
        std::fs::write(&junk, b"not midi").unwrap();
        let mut writer = ClipWriter::new(shared.clone(), params.clone());

        writer.perform(junk, 1, folder.display().to_string());
        let message = wait_for(|| relock(&shared.clip_message).take());
        assert!(message.as_ref().is_err_and(|e| e.contains("junk") && e.contains("not a readable MIDI file")), "{message:?}");
        assert!(params.clips().is_empty() && params.performed_clip().is_empty(), "a bad file plays and saves nothing");

        writer.perform(part, 1, folder.display().to_string());
        let message = wait_for(|| relock(&shared.clip_message).take());
        assert!(message.as_ref().is_ok_and(|m| m.starts_with("performed: saved ")), "{message:?}");
        // The clip list remembers the clip, and the engine plays it (the project remembers that).
        let saved = params.clips();
        assert_eq!(saved.len(), 1);
        assert!(saved[0].contains("my part, performed"), "{saved:?}");
        assert_eq!(params.performed_clip(), saved[0]);
        let played = crate::codec::midi::read(&std::fs::read(&saved[0]).unwrap()).unwrap().performance;
        let mut pitches: Vec<u8> = played.notes.iter().map(|n| n.pitch).collect();
        pitches.sort();
        assert_eq!(pitches, [55, 59, 60, 61, 62, 62, 63, 64, 65, 66, 67], "every note of the part once");
        assert!(played.notes.iter().any(|n| n.velocity != played.notes[0].velocity), "no longer flat");
        shared.threads.join_all();
        let _ = std::fs::remove_dir_all(&folder);
    }
}
