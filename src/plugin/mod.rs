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
pub mod editor;
pub mod engine_source;
pub mod events;
pub mod locate;
pub mod params;
pub mod player;
pub mod shared;
pub mod source;
pub mod worker;

use editor::EditorApp;
use events::{Midi, Played, Timed};
use nice_plug::context::process::SendEventError;
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use nice_plug_egui::{EguiEditor, EguiEditorState, EguiNiceSettings, RepaintNotifier, create_egui_editor};
use params::{Mode, PianoforteParams};
use player::{Controls, InEvent, InKind, OutKind, Player, Sink, TransportView};
use shared::Shared;
use std::sync::Arc;
use std::thread::JoinHandle;
use worker::{Attachment, Command, QUEUE_CAPACITY, Worker};

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
        match std::thread::Builder::new().name("pianoforte-engine".into()).spawn(move || worker.run()) {
            Ok(handle) => self.worker = Some(handle),
            Err(e) => self.shared.update_status(|s| s.engine_error = Some(format!("cannot start the engine thread: {e}"))),
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
        }
    }
}

impl Drop for Pianoforte {
    fn drop(&mut self) {
        self.shared.send(Command::Shutdown);
        if let Ok(mut commands) = self.shared.commands.lock() {
            *commands = None;
        }
        if let Some(handle) = self.worker.take() {
            let _ = handle.join();
        }
    }
}

/// The host's output list as the player's sink.
struct HostSink<'a, C>(&'a mut C);

impl<C: ProcessContext<Pianoforte>> Sink<HostEvent> for HostSink<'_, C> {
    fn send(&mut self, timing: u32, event: &OutKind<HostEvent>) -> bool {
        let event = match *event {
            OutKind::Thru(raw) => {
                // Passing through is best effort: an event kind the host cannot take is not an error.
                return !matches!(self.0.try_send_event(raw), Err((_, SendEventError::HostBufferFull)));
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
        self.0.try_send_event(event).is_ok()
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
            TransportView { playing: t.playing, pos_samples: t.pos_samples() }
        };
        let controls = self.controls();
        self.inputs.clear();
        while let Some(event) = context.next_event() {
            if self.inputs.len() < self.inputs.capacity() {
                self.inputs.push(InEvent { timing: event.timing(), kind: input_kind(&event), raw: event });
            }
        }
        self.player.process(
            frames,
            transport,
            controls,
            &self.inputs,
            self.queue.as_mut(),
            self.played.as_mut(),
            &self.shared.rt,
            &mut HostSink(context),
        );
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
