//! Bare renders (issue 18): one fresh instance, its blocks processed back to back from its
//! activation (or paced to the wall clock), its audio and its MIDI out recorded.

use crate::host::{self, LimitedOutput, OutKind, Plugin, TestHost};
use crate::trace::{TraceReader, trace_files};
use clack_extensions::params::{ParamInfoBuffer, PluginParams};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const RATE: f64 = 48_000.0;

/// A loud, busy take: every 100 ms window sounds while it plays.
const SETTINGS: [(&str, &str); 3] = [("Seed", "7"), ("Density", "12"), ("Velocity min", "90")];

/// How the performance starts at the first block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    /// The host's transport plays from song position 0.
    Transport,
    /// The Play switch is on; the host gives no transport.
    PlaySwitch,
}

#[derive(Debug, Clone)]
pub struct Render {
    pub block: u32,
    pub seconds: f64,
    /// Declares the render offline (CLAP render extension) before activating.
    pub declare_offline: bool,
    /// Waits until the model and the samples are loaded (the trace's ready line) before the
    /// first block; otherwise the first block follows the activation at once.
    pub after_loading: bool,
    /// The host refuses every output event (try_push fails).
    pub refuse_midi: bool,
    pub start: Start,
    /// Paced to the wall clock at this speed; None: back to back, no sleeps.
    pub speed: Option<f64>,
    /// A model file restored as the user's model (state field `model-path`) before activating.
    pub model: Option<PathBuf>,
}

impl Render {
    /// Back to back from the activation, realtime mode (nothing declared), transport playing.
    pub fn fast(block: u32, seconds: f64) -> Render {
        Render {
            block,
            seconds,
            declare_offline: false,
            after_loading: false,
            refuse_midi: false,
            start: Start::Transport,
            speed: None,
            model: None,
        }
    }

    pub fn offline(self) -> Render {
        Render { declare_offline: true, ..self }
    }

    pub fn after_loading(self) -> Render {
        Render { after_loading: true, ..self }
    }
}

#[derive(Debug, Default)]
pub struct Rendered {
    pub audio: [Vec<f32>; 2],
    /// MIDI out: (host sample, channel, kind).
    pub midi: Vec<(u64, u8, OutKind)>,
    /// Output events the host refused.
    pub refused: usize,
    pub wall_seconds: f64,
}

impl Rendered {
    pub fn notes(&self) -> usize {
        self.midi.iter().filter(|(_, _, k)| matches!(k, OutKind::On { .. })).count()
    }
}

/// Renders `r` on a fresh instance (destroyed afterwards).
pub fn render(plugin: &Plugin, r: &Render, trace_dir: &Path) -> Result<Rendered, String> {
    let known = trace_files(trace_dir).len();
    let mut instance = plugin.instance()?;
    // The state first: loading one turns Play off.
    if let Some(model) = &r.model {
        host::set_fields(&mut instance, &[("model-path", &model.display().to_string())])?;
    }
    set_params(&mut instance, r)?;
    if r.declare_offline {
        declare_offline(&mut instance)?;
    }
    let config = PluginAudioConfiguration { sample_rate: RATE, min_frames_count: 1, max_frames_count: r.block };
    let processor = instance.activate(|_, _| (), config).map_err(|e| format!("cannot activate: {e:?}"))?;
    if r.after_loading {
        wait_until_loaded(trace_dir, known)?;
    }
    let mut processor = processor.start_processing().map_err(|e| format!("cannot start processing: {e:?}"))?;
    let rendered = process_blocks(&mut instance, &mut processor, r);
    instance.deactivate(processor.stop_processing());
    rendered
}

/// The take's settings (and the Play switch), flushed before the activation.
fn set_params(instance: &mut PluginInstance<TestHost>, r: &Render) -> Result<(), String> {
    let handle = instance.plugin_handle();
    let params: PluginParams = handle.get_extension().ok_or("the plugin has no params extension")?;
    let mut ids = std::collections::HashMap::new();
    let mut buffer = ParamInfoBuffer::new();
    for i in 0..params.count(&handle) {
        if let Some(info) = params.get_info(&handle, i, &mut buffer) {
            ids.insert(String::from_utf8_lossy(info.name).into_owned(), info.id);
        }
    }
    let play = [("Play", if r.start == Start::PlaySwitch { "On" } else { "Off" })];
    let mut events = EventBuffer::new();
    for (name, text) in SETTINGS.iter().chain(&play) {
        let id = *ids.get(*name).ok_or_else(|| format!("no parameter {name}"))?;
        let value =
            params.text_to_value(&handle, id, &CString::new(*text).unwrap()).ok_or_else(|| format!("{name}: cannot read {text}"))?;
        events.push(&ParamValueEvent::new(0, id, Pckn::match_all(), value));
    }
    let mut inactive = instance.inactive_plugin_handle().ok_or("the instance is active")?;
    params.flush(&mut inactive, &events.as_input(), &mut OutputEvents::void());
    Ok(())
}

fn declare_offline(instance: &mut PluginInstance<TestHost>) -> Result<(), String> {
    let handle = instance.plugin_handle();
    let render: PluginRender = handle.get_extension().ok_or("the plugin has no render extension")?;
    render.set(&handle, RenderMode::Offline).map_err(|e| format!("cannot render offline: {e}"))
}

/// Waits for this activation's trace file and its ready line (model and samples loaded).
fn wait_until_loaded(trace_dir: &Path, known: usize) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut reader: Option<TraceReader> = None;
    while Instant::now() < deadline {
        if reader.is_none() {
            reader = trace_files(trace_dir).get(known).cloned().map(TraceReader::new);
        }
        if let Some(reader) = reader.as_mut() {
            reader.poll();
            if reader.horizon().is_some() {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    match reader {
        None => Err(format!("the plugin wrote no trace file into {} within 120 s", trace_dir.display())),
        Some(_) => Err("the model and the samples were not loaded within 120 s (no ready line in the trace)".into()),
    }
}

fn process_blocks(
    instance: &mut PluginInstance<TestHost>,
    processor: &mut StartedPluginAudioProcessor<TestHost>,
    r: &Render,
) -> Result<Rendered, String> {
    let total = (r.seconds * RATE).round() as u64;
    let mut outputs = vec![vec![0.0f32; r.block as usize]; 2];
    let mut ports = AudioPorts::with_capacity(2, 1);
    let mut out = LimitedOutput::new(r.refuse_midi.then_some(0));
    let mut rendered = Rendered::default();
    let began = Instant::now();
    let mut sample = 0u64;
    while sample < total {
        let frames = (r.block as u64).min(total - sample) as usize;
        pace(r.speed, sample, began);
        let transport = (r.start == Start::Transport).then(|| host::transport_event(true, sample as i64, RATE, false));
        let mut audio = ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(outputs.iter_mut().map(|b| &mut b[..frames])),
        }]);
        out.events.clear();
        processor
            .process(
                &InputAudioBuffers::empty(),
                &mut audio,
                &InputEvents::empty(),
                &mut OutputEvents::from_buffer(&mut out),
                Some(sample),
                transport.as_ref(),
            )
            .map_err(|e| format!("process failed at sample {sample}: {e:?}"))?;
        for (recorded, output) in rendered.audio.iter_mut().zip(&outputs) {
            recorded.extend_from_slice(&output[..frames]);
        }
        let decoded = out.events.iter().filter_map(|e| host::decode_output(e).map(|(c, k)| (sample + e.header().time() as u64, c, k)));
        rendered.midi.extend(decoded);
        host::service_callbacks(instance);
        sample += frames as u64;
    }
    rendered.refused = out.refused;
    rendered.wall_seconds = began.elapsed().as_secs_f64();
    Ok(rendered)
}

/// Sleeps until `sample` is due at `speed` times real time (no sleep when back to back).
fn pace(speed: Option<f64>, sample: u64, began: Instant) {
    let Some(speed) = speed else {
        return;
    };
    let due = sample as f64 / RATE / speed;
    let now = began.elapsed().as_secs_f64();
    if due > now {
        std::thread::sleep(Duration::from_secs_f64(due - now));
    }
}
