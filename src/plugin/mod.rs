//! The pianoforte plugin (VST3 + CLAP through nice-plug): plays an expressive piano performance
//! as MIDI while the host's transport runs. See docs/plugin.md.
//!
//! Threads:
//! - the audio thread ([`Pianoforte::process`]) reads the engine's timed events from a lock-free
//!   queue and sends each one at its exact sample ([`player`]); it never allocates, locks or
//!   blocks;
//! - the engine thread ([`worker`]) owns the model, samples ahead of the playhead, reads the
//!   parameters (atomics) at every step, and keeps the take;
//! - the editor ([`crate::plugin::editor`]) shows it all and saves clips.

pub mod clips;
pub mod drag;
pub mod editor;
pub mod engine_source;
pub mod events;
pub mod live_part;
pub mod locate;
pub mod pace;
pub mod params;
pub mod perform;
pub mod player;
#[cfg(test)]
mod session_tests;
pub mod shared;
pub mod source;
#[cfg(any(test, feature = "test-hooks"))]
pub mod synthetic;
pub mod threads;
pub mod worker;

use editor::EditorApp;
use events::{Midi, Played, Timed};
use nice_plug::context::process::SendEventError;
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use nice_plug_egui::{EguiEditor, EguiEditorState, EguiNiceSettings, RepaintNotifier, create_egui_editor};
use pace::Pace;
use params::{Mode, PianoforteParams, Sound};
use player::{Controls, InEvent, InKind, OutKind, Player, Sink, TransportView};
use shared::{Attachment, Command, Shared};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use worker::{QUEUE_CAPACITY, Worker};

/// The events nice-plug hands us (no SysEx).
type HostEvent = NoteEvent<()>;

/// Input events one buffer holds; the last [`RELEASE_RESERVE`] places are kept for releases, so
/// a flood of notes never drops a NOTE_OFF (what does not fit is counted and shown).
const INPUT_CAPACITY: usize = 4096;
const RELEASE_RESERVE: usize = 1024;

pub struct Pianoforte {
    params: Arc<PianoforteParams>,
    shared: Arc<Shared>,
    player: Player<HostEvent>,
    queue: Option<rtrb::Consumer<Timed>>,
    played: Option<rtrb::Producer<Played>>,
    inputs: Vec<InEvent<HostEvent>>,
    engine_started: bool,
    editor_state: Arc<EguiEditorState>,
    /// How fast the host renders (declared offline, or faster than real time on its clock).
    pace: Pace,
    /// The built-in piano (None until its samples are loaded), and where it arrives from.
    piano: Option<crate::piano::Piano>,
    pianos: Option<rtrb::Consumer<crate::piano::Piano>>,
    /// The Sound parameter last buffer (switching to MIDI only silences the piano at once).
    sound: Sound,
    piano_samples_requested: bool,
    /// The latency last reported to the host (samples): Perform my part's, else none.
    latency: u32,
}

impl Default for Pianoforte {
    fn default() -> Self {
        Pianoforte {
            params: Arc::new(PianoforteParams::default()),
            shared: Arc::new(Shared::default()),
            player: Player::new(48_000.0),
            queue: None,
            played: None,
            inputs: Vec::with_capacity(INPUT_CAPACITY),
            engine_started: false,
            editor_state: editor::default_state(),
            pace: Pace::default(),
            piano: None,
            pianos: None,
            sound: Sound::Piano,
            piano_samples_requested: false,
            latency: 0,
        }
    }
}

impl Pianoforte {
    /// Starts the engine thread (once per plugin instance, at the first activation).
    fn ensure_worker(&mut self) {
        if std::mem::replace(&mut self.engine_started, true) {
            return;
        }
        let (sender, receiver) = std::sync::mpsc::channel();
        *shared::relock(&self.shared.commands) = Some(sender);
        let worker = Worker::new(self.shared.clone(), self.params.clone(), receiver, locate::own_folder());
        let shared = self.shared.clone();
        let run = move || {
            // A panic must not leave notes sounding or the editor guessing: the audio thread ends
            // the performance (new generation) and stops waiting for the engine; the editor says why.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run()));
            shared.rt.engine_alive.store(false, Ordering::Release);
            if let Err(panic) = outcome {
                shared.rt.generation.fetch_add(1, Ordering::AcqRel);
                let message = format!("the engine stopped unexpectedly ({}); reload the plugin", panic_message(&*panic));
                nice_plug::nice_log!("pianoforte: {message}");
                shared.update_status(|s| s.engine_error = Some(message));
            }
        };
        // Alive from now: a fast render's first buffer waits for the engine, not past it.
        self.shared.rt.engine_alive.store(true, Ordering::Release);
        if let Err(e) = self.shared.threads.spawn("pianoforte-engine", run) {
            self.shared.rt.engine_alive.store(false, Ordering::Release);
            self.shared.update_status(|s| s.engine_error = Some(e));
        }
    }

    /// Loads the piano samples on a thread of their own (once per plugin instance): the plugin
    /// plays MIDI meanwhile, and without samples it says so in the editor and plays MIDI only.
    fn ensure_piano_samples(&mut self) {
        if std::mem::replace(&mut self.piano_samples_requested, true) {
            return;
        }
        self.shared.rt.piano_loading.store(true, Ordering::Release);
        let shared = self.shared.clone();
        let load = move || {
            // Cleared however the load ends (a panic included): a fast render stops waiting.
            let _loading = ClearOnDrop(&shared.rt.piano_loading);
            let candidates: Vec<std::path::PathBuf> = locate::own_folder()
                .iter()
                .flat_map(|f| [f.join(crate::piano::layout::FOLDER), f.join("../Resources").join(crate::piano::layout::FOLDER)])
                .collect();
            let began = std::time::Instant::now();
            let status = match crate::piano::shared_samples(&candidates) {
                Ok(set) => {
                    let note =
                        format!("{:.0} MB of samples, ready in {:.1} s", set.memory_bytes() as f64 / 1e6, began.elapsed().as_secs_f64());
                    let mut handoff = shared::relock(&shared.piano);
                    handoff.samples = Some(set);
                    handoff.hand_over();
                    Ok(note)
                }
                Err(e) => {
                    nice_plug::nice_log!("pianoforte: no piano: {e}");
                    Err(format!("The piano samples are missing, so pianoforte plays MIDI only: {e}"))
                }
            };
            shared.update_status(|s| s.piano = Some(status));
        };
        if let Err(e) = self.shared.threads.spawn("pianoforte-samples", load) {
            self.shared.rt.piano_loading.store(false, Ordering::Release);
            self.shared.update_status(|s| s.piano = Some(Err(format!("cannot load the piano samples: {e}"))));
        }
    }

    /// Activation waits (bounded) for the piano samples, so the piano plays from the first block
    /// in every host, also in one that renders the moment it has loaded us (activation is not
    /// real time; the samples are shared, so only a process's first instance loads them).
    fn wait_for_piano_samples(&self) {
        let began = std::time::Instant::now();
        while self.shared.rt.piano_loading.load(Ordering::Acquire) && began.elapsed() < ACTIVATION_WAIT {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Takes the piano once its samples have arrived; a fast render waits for them (within its
    /// budget), so a bounce never starts silent.
    fn take_piano(&mut self, sound: Sound) {
        if self.piano.is_none() && sound == Sound::Piano {
            let rt = &self.shared.rt;
            self.pace.wait(|| !rt.piano_loading.load(Ordering::Acquire), &rt.offline_timeouts);
        }
        if self.piano.is_none()
            && let Some(piano) = self.pianos.as_mut().and_then(|q| q.pop().ok())
        {
            self.piano = Some(piano);
        }
        if let Some(piano) = self.piano.as_mut() {
            if sound != self.sound {
                piano.reset();
            }
            piano.set_volume(crate::piano::Decibels::new(self.params.volume.value()).unwrap_or(crate::piano::Decibels::DEFAULT));
        }
        self.sound = sound;
    }

    /// The host's events of this buffer. When more come than fit, releases still get the
    /// reserved places; what is left out is counted (the editor shows it).
    fn collect_inputs(&mut self, context: &mut impl ProcessContext<Self>) {
        self.inputs.clear();
        let mut dropped = 0u64;
        while let Some(event) = context.next_event() {
            let kind = input_kind(&event);
            if input_fits(kind, self.inputs.len()) {
                self.inputs.push(InEvent { timing: event.timing(), kind, raw: event });
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.shared.rt.dropped_input.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// The latency to report at `sample_rate`: Perform my part plays the track's part this
    /// late (the model hears ahead of each note), else none.
    fn latency_samples(&self, sample_rate: f64) -> u32 {
        if self.params.perform.value() { (crate::perform::live::LATENCY * sample_rate).round() as u32 } else { 0 }
    }

    fn controls(&self) -> Controls {
        let p = &self.params;
        let (key_low, key_high) = p.key_range();
        Controls {
            play: p.play.value(),
            bypass: p.bypass.value(),
            continue_mode: p.mode.value() == Mode::Continue && !p.perform.value(),
            perform_part: p.perform.value(),
            key_low,
            key_high,
            velocity_min: p.velocity_min.value().clamp(1, 127) as u8,
            velocity_max: p.velocity_max.value().clamp(1, 127) as u8,
            seed: p.seed.value(),
        }
    }
}

/// Whether an input event of `kind` fits after `held` others: releases may take the reserved
/// places, so a note never sticks for lack of room.
fn input_fits(kind: InKind, held: usize) -> bool {
    let release = matches!(kind, InKind::NoteOff { .. } | InKind::Pedal { down: false });
    held < if release { INPUT_CAPACITY } else { INPUT_CAPACITY - RELEASE_RESERVE }
}

/// The longest an activation waits for the piano samples (a slow disk: the plugin activates
/// without them, and a fast render waits for them within its budget).
const ACTIVATION_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A panic's message, in words.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
    text.unwrap_or_else(|| "no reason given".into())
}

/// Stores `false` when dropped (also when the thread that holds it panics).
struct ClearOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Drop for Pianoforte {
    /// Every thread of this instance ends and is joined before the host's last call returns, so
    /// the host may unload the library right after (docs/plugin.md).
    fn drop(&mut self) {
        self.shared.send(Command::Shutdown);
        *shared::relock(&self.shared.commands) = None;
        self.shared.threads.join_all();
    }
}

/// The player's sink: the built-in piano (when it plays) and the host's MIDI output.
struct HostSink<'a, C> {
    context: &'a mut C,
    piano: Option<&'a mut crate::piano::Piano>,
}

impl<C: ProcessContext<Pianoforte>> Sink<HostEvent> for HostSink<'_, C> {
    /// Plays on the piano whatever the host does with MIDI out; a full piano queue drops it.
    fn play(&mut self, timing: u32, midi: Midi) {
        use crate::piano::{Pitch, Velocity};
        let Some(piano) = self.piano.as_deref_mut() else {
            return;
        };
        let _ = match midi {
            Midi::NoteOn { key, velocity } => match (Pitch::new(key), Velocity::new(velocity)) {
                (Some(key), Some(velocity)) => piano.note_on(timing, key, velocity),
                _ => Ok(()),
            },
            Midi::NoteOff { key } => Pitch::new(key).map_or(Ok(()), |key| piano.note_off(timing, key)),
            Midi::Pedal { down } => piano.pedal(timing, down),
        };
    }

    /// MIDI out, a copy of what the piano plays. Only a full host buffer is a refusal (a
    /// release is sent again next buffer); a host without MIDI out has nothing to refuse.
    fn send(&mut self, timing: u32, out: &OutKind<HostEvent>) -> bool {
        let event = match *out {
            OutKind::Thru(raw) => raw,
            OutKind::Gen(midi) => host_event(timing, midi),
        };
        !matches!(self.context.try_send_event(event), Err((_, SendEventError::HostBufferFull)))
    }
}

/// A generated event as the host's MIDI event (channel 1).
fn host_event(timing: u32, midi: Midi) -> HostEvent {
    let (voice_id, channel) = (VoiceID::Wildcard, Channel::Number(0));
    match midi {
        Midi::NoteOn { key, velocity } => {
            NoteEvent::NoteOn { timing, voice_id, channel, key: Key::Number(key), velocity: velocity as f32 / 127.0 }
        }
        Midi::NoteOff { key } => NoteEvent::NoteOff { timing, voice_id, channel, key: Key::Number(key), velocity: 0.0 },
        Midi::Pedal { down } => {
            NoteEvent::MidiCC { timing, channel: 0, cc: control_change::DAMPER_PEDAL, value: if down { 1.0 } else { 0.0 } }
        }
    }
}

/// What an incoming event means to the player.
fn input_kind(event: &HostEvent) -> InKind {
    match *event {
        NoteEvent::NoteOn { key: Key::Number(key), velocity, .. } if velocity > 0.0 => {
            InKind::NoteOn { key, velocity: ((velocity * 127.0).round() as u8).clamp(1, 127) }
        }
        NoteEvent::NoteOn { key: Key::Number(key), .. } | NoteEvent::NoteOff { key: Key::Number(key), .. } => InKind::NoteOff { key },
        NoteEvent::MidiCC { cc, value, .. } if cc == control_change::DAMPER_PEDAL => InKind::Pedal { down: value >= 0.5 },
        _ => InKind::Other,
    }
}

impl Plugin for Pianoforte {
    const NAME: &'static str = "pianoforte";
    const VENDOR: &'static str = "pianoforte";
    const URL: &'static str = "https://example.invalid/pianoforte";
    const EMAIL: &'static str = "pianoforte@example.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    // Silent stereo output: hosts treat the plugin as an instrument and call it every buffer.
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout { main_input_channels: None, main_output_channels: NonZeroU32::new(2), ..AudioIOLayout::const_default() },
        AudioIOLayout { main_input_channels: None, main_output_channels: None, ..AudioIOLayout::const_default() },
    ];
    const MIDI_INPUT: MidiConfig = MidiConfig::MidiCCs;
    const MIDI_OUTPUT: MidiConfig = MidiConfig::MidiCCs;
    const SAMPLE_ACCURATE_AUTOMATION: bool = false;
    const INPUT_EVENT_CAPACITY: usize = INPUT_CAPACITY;

    type SysExMessage = ();
    type BackgroundTask = ();
    type Editor = EguiEditor<EditorApp>;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    /// A project saved while Play was on must not start playing when it is opened: Play is
    /// restored off. A project saved before Timing, Motifs, Tightness or Perform my part existed
    /// plays as it did: in free time, without the motif memory, without the pull towards the
    /// beat, improvising (even when loaded into an instance performing a part).
    fn filter_state(state: &mut PluginState) {
        if let Some(play) = state.params.get_mut("play") {
            *play = nice_plug::plugin::ParamValue::Bool(false);
        }
        state.params.entry("timing".into()).or_insert_with(|| nice_plug::plugin::ParamValue::String("free".into()));
        state.params.entry("motifs".into()).or_insert(nice_plug::plugin::ParamValue::F32(0.0));
        state.params.entry("tightness".into()).or_insert(nice_plug::plugin::ParamValue::F32(0.0));
        state.params.entry("perform".into()).or_insert(nice_plug::plugin::ParamValue::Bool(false));
    }

    fn editor(&mut self, _executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        create_egui_editor(
            self.editor_state.clone(),
            RepaintNotifier::new(),
            EguiNiceSettings::new().with_tile("pianoforte"),
            EditorApp::new(self.params.clone(), self.shared.clone()),
        )
    }

    fn activate(&mut self, _layout: &AudioIOLayout, config: &BufferConfig, context: &mut impl ActivateContext<Self>) -> bool {
        self.latency = self.latency_samples(config.sample_rate as f64);
        context.set_latency_samples(self.latency);
        self.ensure_worker();
        self.ensure_piano_samples();
        self.wait_for_piano_samples();
        self.pace.activate(config.process_mode == ProcessMode::Offline);
        // A piano for this activation's sample rate, made here or by the loader when it finishes.
        let (pianos_in, pianos_out) = rtrb::RingBuffer::new(2);
        self.piano = None;
        self.pianos = Some(pianos_out);
        {
            let mut handoff = shared::relock(&self.shared.piano);
            handoff.queue = Some(pianos_in);
            handoff.sample_rate = config.sample_rate;
            handoff.hand_over();
        }
        let (events_in, events_out) = rtrb::RingBuffer::<Timed>::new(QUEUE_CAPACITY);
        let (played_in, played_out) = rtrb::RingBuffer::<Played>::new(QUEUE_CAPACITY);
        self.player.set_sample_rate(config.sample_rate as f64);
        self.player.reset();
        self.queue = Some(events_out);
        self.played = Some(played_in);
        self.shared.send(Command::Attach(Box::new(Attachment {
            events: events_in,
            played: played_out,
            sample_rate: config.sample_rate as f64,
            max_buffer: config.max_buffer_size.max(1),
        })));
        true
    }

    fn reset(&mut self) {
        self.player.reset();
    }

    fn deactivate(&mut self) {
        self.shared.send(Command::Detach);
    }

    fn process(&mut self, buffer: &mut Buffer, _aux: &mut AuxiliaryBuffers, context: &mut impl ProcessContext<Self>) -> ProcessStatus {
        for channel in buffer.as_slice() {
            channel.fill(0.0);
        }
        let frames = buffer.samples() as u32;
        let fast = self.pace.buffer_begins(std::time::Instant::now(), self.player.seconds(frames));
        self.shared.rt.fast.store(fast, Ordering::Release);
        self.shared.rt.offline.store(self.pace.declared_offline(), Ordering::Release);
        let transport = {
            let t = context.transport();
            // The song's grid for clips (lock-free; published only when it changes).
            self.shared.grid.publish(&clips::GridAnchor::from_transport(self.player.clock_seconds(), t));
            TransportView { playing: t.playing, pos_samples: t.pos_samples() }
        };
        let controls = self.controls();
        // Perform my part switched: the host hears of the new latency (and restarts us).
        let latency = self.latency_samples(self.player.sample_rate());
        if latency != self.latency {
            self.latency = latency;
            context.set_latency_samples(latency);
        }
        self.collect_inputs(context);
        // "MIDI only" silences the piano at once.
        let sound = self.params.sound.value();
        self.take_piano(sound);
        let piano = self.piano.as_mut().filter(|_| sound == Sound::Piano);
        let mut sink = HostSink { context, piano };
        self.player.process(
            frames,
            transport,
            controls,
            &self.inputs,
            self.queue.as_mut(),
            self.played.as_mut(),
            &self.shared.rt,
            &mut self.pace,
            &mut sink,
        );
        if let Some(piano) = sink.piano
            && let [left, right, ..] = buffer.as_slice()
        {
            piano.render(left, right);
        }
        ProcessStatus::KeepAlive
    }
}

impl ClapPlugin for Pianoforte {
    const CLAP_ID: &'static str = "org.pianoforte.pianoforte";
    const CLAP_DESCRIPTION: Option<&'static str> = Some("Plays an expressive piano performance as MIDI");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[ClapFeature::Instrument, ClapFeature::NoteEffect, ClapFeature::Stereo];
}

impl Vst3Plugin for Pianoforte {
    const VST3_CLASS_ID: [u8; 16] = *b"pianoforteGRU001";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Instrument, Vst3SubCategory::Generator, Vst3SubCategory::Piano];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_samples_loader_clears_its_flag_even_when_it_panics() {
        // Issue 18: a loader that panicked left `piano_loading` set, and every fast-render buffer
        // waited for samples that would never come.
        let loading = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = loading.clone();
        let outcome = std::thread::spawn(move || {
            let _loading = ClearOnDrop(&flag);
            panic!("the loader fails");
        })
        .join();
        assert!(outcome.is_err(), "the loader was meant to panic");
        assert!(!loading.load(Ordering::Acquire));
    }

    #[test]
    fn a_flood_of_notes_leaves_room_for_every_release() {
        let (on, off, pedal_up) = (InKind::NoteOn { key: 60, velocity: 90 }, InKind::NoteOff { key: 60 }, InKind::Pedal { down: false });
        let full_of_notes = INPUT_CAPACITY - RELEASE_RESERVE;
        assert!(input_fits(on, full_of_notes - 1) && !input_fits(on, full_of_notes));
        assert!(input_fits(off, full_of_notes) && input_fits(pedal_up, INPUT_CAPACITY - 1));
        // The buffer's own capacity is never exceeded (no allocation on the audio thread).
        assert!(!input_fits(off, INPUT_CAPACITY));
    }
}
