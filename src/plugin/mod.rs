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
pub mod locate;
pub mod params;
pub mod player;
pub mod shared;
pub mod source;
pub mod threads;
pub mod worker;

use editor::EditorApp;
use events::{Midi, Played, Timed};
use nice_plug::context::process::SendEventError;
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use nice_plug_egui::{EguiEditor, EguiEditorState, EguiNiceSettings, RepaintNotifier, create_egui_editor};
use params::{Mode, PianoforteParams, Sound};
use player::{Controls, InEvent, InKind, OutKind, Player, Sink, TransportView};
use shared::Shared;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use worker::{Attachment, Command, QUEUE_CAPACITY, Worker};

/// The piano samples of this process, shared by every instance while any of them holds them.
static PIANO_SAMPLES: std::sync::Mutex<std::sync::Weak<crate::piano::SampleSet>> = std::sync::Mutex::new(std::sync::Weak::new());

/// The events nice-plug hands us (no SysEx).
type HostEvent = NoteEvent<()>;

pub struct Pianoforte {
    params: Arc<PianoforteParams>,
    shared: Arc<Shared>,
    player: Player<HostEvent>,
    queue: Option<rtrb::Consumer<Timed>>,
    played: Option<rtrb::Producer<Played>>,
    inputs: Vec<InEvent<HostEvent>>,
    worker: Option<JoinHandle<()>>,
    editor_state: Arc<EguiEditorState>,
    /// The host renders offline (faster than real time); from the activation's process mode.
    offline: bool,
    /// The built-in piano (None until its samples are loaded), and where it arrives from.
    piano: Option<crate::piano::Piano>,
    pianos: Option<rtrb::Consumer<crate::piano::Piano>>,
    /// The Sound parameter last buffer (switching to MIDI only silences the piano at once).
    sound: Sound,
    piano_samples_requested: bool,
}

impl Default for Pianoforte {
    fn default() -> Self {
        Pianoforte {
            params: Arc::new(PianoforteParams::default()),
            shared: Arc::new(Shared::default()),
            player: Player::new(48_000.0),
            queue: None,
            played: None,
            inputs: Vec::with_capacity(Self::INPUT_EVENT_CAPACITY),
            worker: None,
            editor_state: editor::default_state(),
            offline: false,
            piano: None,
            pianos: None,
            sound: Sound::Piano,
            piano_samples_requested: false,
        }
    }
}

impl Pianoforte {
    /// Starts the engine thread (once per plugin instance, at the first activation).
    fn ensure_worker(&mut self) {
        if self.worker.is_some() {
            return;
        }
        let (sender, receiver) = std::sync::mpsc::channel();
        if let Ok(mut commands) = self.shared.commands.lock() {
            *commands = Some(sender);
        }
        let worker = Worker::new(self.shared.clone(), self.params.clone(), receiver, locate::own_folder());
        let shared = self.shared.clone();
        let run = move || {
            // A panic must not leave notes sounding or the editor guessing: the audio thread ends
            // the performance (new generation) and stops waiting for the engine; the editor says why.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run()));
            let rt = &shared.rt;
            rt.engine_alive.store(false, Ordering::Release);
            if let Err(panic) = outcome {
                rt.generation.fetch_add(1, Ordering::AcqRel);
                let why = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
                let message =
                    format!("the engine stopped unexpectedly ({}); reload the plugin", why.unwrap_or_else(|| "no reason given".into()));
                nice_plug::nice_log!("pianoforte: {message}");
                shared.update_status(|s| s.engine_error = Some(message));
            }
        };
        match std::thread::Builder::new().name("pianoforte-engine".into()).spawn(run) {
            Ok(handle) => self.worker = Some(handle),
            Err(e) => self.shared.update_status(|s| s.engine_error = Some(format!("cannot start the engine thread: {e}"))),
        }
    }

    /// Loads the piano samples on a thread of their own (once per plugin instance): the plugin
    /// plays MIDI meanwhile, and without samples it says so in the editor and plays MIDI only.
    fn ensure_piano_samples(&mut self) {
        if std::mem::replace(&mut self.piano_samples_requested, true) {
            return;
        }
        let shared = self.shared.clone();
        let load = move || {
            let folder = locate::own_folder();
            let candidates: Vec<std::path::PathBuf> = folder
                .iter()
                .flat_map(|f| [f.join(crate::piano::layout::FOLDER), f.join("../Resources").join(crate::piano::layout::FOLDER)])
                .collect();
            let began = std::time::Instant::now();
            // Every instance in the host shares one set (and waits for the one load under way).
            let mut cached = shared::relock(&PIANO_SAMPLES);
            let loaded = match cached.upgrade() {
                Some(set) => Ok(set),
                None => crate::piano::locate(&candidates).and_then(|found| crate::piano::SampleSet::load(&found)).map(Arc::new),
            };
            if let Ok(set) = &loaded {
                *cached = Arc::downgrade(set);
            }
            drop(cached);
            let status = match loaded {
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
            shared.rt.piano_loading.store(false, Ordering::Release);
        };
        self.shared.rt.piano_loading.store(true, Ordering::Release);
        if let Err(e) = std::thread::Builder::new().name("pianoforte-samples".into()).spawn(load) {
            self.shared.rt.piano_loading.store(false, Ordering::Release);
            self.shared.update_status(|s| s.piano = Some(Err(format!("cannot load the piano samples: {e}"))));
        }
    }

    fn controls(&self) -> Controls {
        let p = &self.params;
        Controls {
            play: p.play.value(),
            bypass: p.bypass.value(),
            continue_mode: p.mode.value() == Mode::Continue,
            key_low: p.key_low.value().clamp(0, 127) as u8,
            key_high: p.key_high.value().clamp(0, 127) as u8,
            velocity_min: p.velocity_min.value().clamp(1, 127) as u8,
            velocity_max: p.velocity_max.value().clamp(1, 127) as u8,
            seed: p.seed.value(),
        }
    }
}

/// Offline, the longest one buffer waits for the piano samples to load.
const PIANO_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// How long closing the plugin waits for the engine thread to finish its model step.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for Pianoforte {
    fn drop(&mut self) {
        self.shared.send(Command::Shutdown);
        *shared::relock(&self.shared.commands) = None;
        let Some(handle) = self.worker.take() else {
            return;
        };
        // Bounded: a host closing a project never hangs on us. A thread that does not finish in
        // time is left to end on its own (it holds its own references to what it uses).
        let began = std::time::Instant::now();
        while !handle.is_finished() && began.elapsed() < SHUTDOWN_WAIT {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if handle.is_finished() {
            let _ = handle.join();
        }
    }
}

/// The host's output list as the player's sink; what is sent also plays on the built-in piano.
struct HostSink<'a, C> {
    context: &'a mut C,
    piano: Option<&'a mut crate::piano::Piano>,
}

impl<C> HostSink<'_, C> {
    /// Plays what was sent (generated or passed through) on the piano; a full piano queue drops it.
    fn play(&mut self, timing: u32, midi: InKind) {
        use crate::piano::{Pitch, Velocity};
        let Some(piano) = self.piano.as_deref_mut() else {
            return;
        };
        let _ = match midi {
            InKind::NoteOn { key, velocity } => match (Pitch::new(key), Velocity::new(velocity)) {
                (Some(key), Some(velocity)) => piano.note_on(timing, key, velocity),
                _ => Ok(()),
            },
            InKind::NoteOff { key } => Pitch::new(key).map_or(Ok(()), |key| piano.note_off(timing, key)),
            InKind::Pedal { down } => piano.pedal(timing, down),
            InKind::Other => Ok(()),
        };
    }
}

impl<C: ProcessContext<Pianoforte>> Sink<HostEvent> for HostSink<'_, C> {
    fn send(&mut self, timing: u32, out: &OutKind<HostEvent>) -> bool {
        let event = match *out {
            OutKind::Thru(raw) => {
                // Passing through is best effort: an event kind the host cannot take is not an error.
                self.play(timing, input_kind(&raw));
                return !matches!(self.context.try_send_event(raw), Err((_, SendEventError::HostBufferFull)));
            }
            OutKind::Gen(Midi::NoteOn { key, velocity }) => NoteEvent::NoteOn {
                timing,
                voice_id: VoiceID::Wildcard,
                channel: Channel::Number(0),
                key: Key::Number(key),
                velocity: velocity as f32 / 127.0,
            },
            OutKind::Gen(Midi::NoteOff { key }) => NoteEvent::NoteOff {
                timing,
                voice_id: VoiceID::Wildcard,
                channel: Channel::Number(0),
                key: Key::Number(key),
                velocity: 0.0,
            },
            OutKind::Gen(Midi::Pedal { down }) => {
                NoteEvent::MidiCC { timing, channel: 0, cc: control_change::DAMPER_PEDAL, value: if down { 1.0 } else { 0.0 } }
            }
        };
        let sent = self.context.try_send_event(event).is_ok();
        if sent && let OutKind::Gen(midi) = *out {
            self.play(
                timing,
                match midi {
                    Midi::NoteOn { key, velocity } => InKind::NoteOn { key, velocity },
                    Midi::NoteOff { key } => InKind::NoteOff { key },
                    Midi::Pedal { down } => InKind::Pedal { down },
                },
            );
        }
        sent
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

    type SysExMessage = ();
    type BackgroundTask = ();
    type Editor = EguiEditor<EditorApp>;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    /// A project saved while Play was on must not start playing when it is opened: Play is
    /// restored off.
    fn filter_state(state: &mut PluginState) {
        if let Some(play) = state.params.get_mut("play") {
            *play = nice_plug::plugin::ParamValue::Bool(false);
        }
    }

    fn editor(&mut self, _executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        create_egui_editor(
            self.editor_state.clone(),
            RepaintNotifier::new(),
            EguiNiceSettings::new().with_tile("pianoforte"),
            EditorApp::new(self.params.clone(), self.shared.clone()),
        )
    }

    fn activate(&mut self, _layout: &AudioIOLayout, config: &BufferConfig, _context: &mut impl ActivateContext<Self>) -> bool {
        self.ensure_worker();
        self.ensure_piano_samples();
        self.offline = config.process_mode == ProcessMode::Offline;
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
        if self.inputs.capacity() < Self::INPUT_EVENT_CAPACITY {
            self.inputs = Vec::with_capacity(Self::INPUT_EVENT_CAPACITY);
        }
        self.shared.send(Command::Attach(Box::new(Attachment {
            events: events_in,
            played: played_out,
            sample_rate: config.sample_rate as f64,
            max_buffer: config.max_buffer_size.max(1),
            offline: self.offline,
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
        let transport = {
            let t = context.transport();
            // The song's grid for clips (lock-free; published only when it changes).
            self.shared.grid.publish(&clips::GridAnchor::from_transport(self.player.clock_seconds(), t));
            TransportView { playing: t.playing, pos_samples: t.pos_samples(), offline: self.offline }
        };
        let controls = self.controls();
        self.inputs.clear();
        while let Some(event) = context.next_event() {
            if self.inputs.len() < self.inputs.capacity() {
                self.inputs.push(InEvent { timing: event.timing(), kind: input_kind(&event), raw: event });
            }
        }
        // The piano: arrives once its samples are loaded (an offline render waits for them, so
        // a bounce never starts silent); "MIDI only" silences it at once.
        let sound = self.params.sound.value();
        if self.piano.is_none() && self.offline && sound == Sound::Piano {
            let began = std::time::Instant::now();
            while self.shared.rt.piano_loading.load(Ordering::Acquire) && began.elapsed() < PIANO_WAIT {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
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
