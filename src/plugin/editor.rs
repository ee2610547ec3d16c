//! The plugin's window (egui): every parameter, a live piano roll, the model and its card, the
//! engine's status in words, and clips.

use crate::codec::Pitch;
use crate::plugin::clips::writer::ClipWriter;
use crate::plugin::clips::{self, ClipLength, ClipSource};
use crate::plugin::drag::{self, Drag, DragEnd, DragEvent};
use crate::plugin::events::pair_played;
use crate::plugin::params::{KEY_ANY, Mode, PianoforteParams, Timing, note_name};
use crate::plugin::shared::Command;
use crate::plugin::shared::{Following, Shared, Status, relock};
use egui::{Align2, Color32, FontId, Pos2, Rect, RichText, Sense, Stroke, StrokeKind, Vec2};
use nice_plug::context::gui::{GuiContext, ParamSetter};
use nice_plug::params::Param;
use nice_plug::prelude::{Enum, EnumParam};
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{EguiEditorState, Frame, NiceEguiApp};
use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub const WIDTH: f64 = 980.0;
pub const HEIGHT: f64 = 660.0;

/// The editor's size (logical pixels), shared with the wrapper.
pub fn default_state() -> Arc<EguiEditorState> {
    EguiEditorState::from_size(nice_plug::editor::dpi::LogicalSize::new(WIDTH, HEIGHT), 1.0)
}

/// Seconds of music the piano roll shows.
const ROLL_SECONDS: f64 = 8.0;
/// The piano roll's height, with the line above it that says which time it follows.
const ROLL_HEIGHT: f32 = 300.0;
const CAPTION_HEIGHT: f32 = 18.0;
/// Beat lines closer than this (pixels) are left out, so the roll never fills with lines;
/// bar lines are thinned to every few bars the same way.
const MIN_LINE_GAP: f32 = 6.0;
/// The parameter sliders' length: with the label and the value box it fits the 300 px panel.
const SLIDER_WIDTH: f32 = 120.0;
/// Colours: the header's light while playing, status text that is fine or not, the accent.
const GREEN: Color32 = Color32::from_rgb(90, 200, 110);
const OK_TEXT: Color32 = Color32::from_rgb(120, 200, 120);
const ERROR_TEXT: Color32 = Color32::from_rgb(235, 110, 90);
const ACCENT: Color32 = Color32::from_rgb(240, 210, 150);
/// Clip lengths offered: seconds (0 = the whole take) or bars.
const CLIP_CHOICES: [ClipChoice; 9] = [
    ClipChoice::Seconds(15),
    ClipChoice::Seconds(30),
    ClipChoice::Seconds(60),
    ClipChoice::Seconds(120),
    ClipChoice::Seconds(300),
    ClipChoice::Bars(4),
    ClipChoice::Bars(8),
    ClipChoice::Bars(16),
    ClipChoice::Seconds(0),
];

/// What the clip length menu holds (remembered as `clip-seconds` and `clip-bars`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum ClipChoice {
    /// 0 = the whole take.
    Seconds(u32),
    Bars(u32),
}

impl ClipChoice {
    fn of(params: &PianoforteParams) -> ClipChoice {
        match params.clip_bars() {
            0 => ClipChoice::Seconds(params.clip_seconds()),
            bars => ClipChoice::Bars(bars),
        }
    }

    fn store(self, params: &PianoforteParams) {
        let (seconds, bars) = match self {
            ClipChoice::Seconds(s) => (s, 0),
            ClipChoice::Bars(b) => (params.clip_seconds(), b),
        };
        if let Ok(mut stored) = params.clip_seconds.lock() {
            *stored = seconds;
        }
        if let Ok(mut stored) = params.clip_bars.lock() {
            *stored = bars;
        }
    }

    fn length(self) -> ClipLength {
        match self {
            ClipChoice::Seconds(0) => ClipLength::WholeTake,
            ClipChoice::Seconds(s) => ClipLength::LastSeconds(s as f64),
            ClipChoice::Bars(b) => ClipLength::LastBars(b),
        }
    }

    fn label(self) -> String {
        match self {
            ClipChoice::Seconds(0) => "the whole take".into(),
            ClipChoice::Seconds(s) if s >= 60 => format!("the last {} min", s / 60),
            ClipChoice::Seconds(s) => format!("the last {s} s"),
            ClipChoice::Bars(b) => format!("the last {b} bars"),
        }
    }
}

/// How often the clip list looks whether its files still exist.
const CLIP_CHECK_INTERVAL: Duration = Duration::from_secs(1);

pub struct EditorApp {
    params: Arc<PianoforteParams>,
    shared: Arc<Shared>,
    gui: Option<GuiContext>,
    /// The text fields of the remembered settings, and the remembered values they last showed:
    /// a value that changes under the editor (the host restores a project after the editor
    /// was made, the engine loads a model) replaces the field's text.
    model_path: String,
    clips_folder: String,
    seen_model_path: String,
    seen_clips_folder: String,
    /// Where the plugin binary lies (ONNX Runtime is looked for there).
    plugin_folder: Option<PathBuf>,
    /// The editor's window, for dragging clips out of it.
    window: Option<nice_plug_egui::baseview::PlatformHandle>,
    /// The drag in progress, and the selection it drags (None: a clip from the list).
    drag: Option<(Drag, Option<Selection>)>,
    /// The clip last written for a drag of the selection, and what it was made from: the same
    /// drag again reuses the file.
    dragged: Option<(Selection, PathBuf)>,
    /// Saves clips and looks at their files, off this thread.
    writer: ClipWriter,
    /// Remembered clips and whether their files exist, as the writer last found.
    clip_files: Vec<(String, bool)>,
    /// When the writer was last asked to look at them (every CLIP_CHECK_INTERVAL).
    clip_files_asked: Option<Instant>,
    /// Where the drag handle was drawn last (logged for the host tests when it moves).
    handle_rect: Option<Rect>,
    /// A press on a drag grip (which one, where), waiting for the pointer to move.
    press: Option<(egui::Id, Pos2)>,
}

/// What a drag of the selection was made from: the length, the clock, the take's size.
type Selection = (ClipLength, u64, usize);

/// Who made what, and on which terms (the piano samples' credits follow it).
const ABOUT: &str = "pianoforte: code under MIT OR Apache-2.0. The built-in model was trained on MAESTRO v2.0.0 \
(Hawthorne et al., 2019) and ASAP (Foscarin et al., 2020) and inherits their licence, CC BY-NC-SA 4.0: non-commercial \
use only, share-alike.";

impl EditorApp {
    pub fn new(params: Arc<PianoforteParams>, shared: Arc<Shared>) -> Self {
        let plugin_folder = crate::plugin::locate::own_folder();
        let writer = ClipWriter::new(shared.clone(), params.clone());
        let mut app = EditorApp {
            params,
            shared,
            gui: None,
            model_path: String::new(),
            clips_folder: String::new(),
            seen_model_path: String::new(),
            seen_clips_folder: String::new(),
            plugin_folder,
            window: None,
            drag: None,
            dragged: None,
            writer,
            clip_files: Vec::new(),
            clip_files_asked: None,
            handle_rect: None,
            press: None,
        };
        app.sync_persisted();
        app
    }

    /// Shows the remembered settings as they are now. nice-plug makes the editor before the
    /// host restores a project's state, so the fields must follow the values, not copy them once.
    fn sync_persisted(&mut self) {
        let model_path = self.params.model_path();
        if model_path != self.seen_model_path {
            self.model_path = model_path.clone();
            self.seen_model_path = model_path;
        }
        let clips_folder = self.params.clips_folder();
        if clips_folder != self.seen_clips_folder {
            self.clips_folder = clips_folder.clone();
            self.seen_clips_folder = clips_folder;
        }
    }
}

fn velocity_colour(velocity: u8, input: bool) -> Color32 {
    // Soft notes deep blue, loud ones bright orange; the musician's own notes green.
    let t = (velocity as f32 / 127.0).clamp(0.0, 1.0);
    let mix = |a: f32, b: f32| (a + (b - a) * t) as u8;
    if input {
        Color32::from_rgb(mix(40.0, 140.0), mix(110.0, 235.0), mix(60.0, 120.0))
    } else {
        Color32::from_rgb(mix(40.0, 255.0), mix(70.0, 170.0), mix(170.0, 40.0))
    }
}

/// One row of the parameter grid: the name, then the host-aware slider.
fn slider_row<P: Param>(ui: &mut egui::Ui, label: &str, param: &P, setter: &ParamSetter) {
    ui.label(label);
    ui.add(ParamSlider::for_param(param, setter).with_width(SLIDER_WIDTH));
    ui.end_row();
}

/// One row of buttons, one for each choice of an enum parameter. Through the setter, so the host
/// records one change (automation, undo).
fn choice_row<T: Enum + PartialEq + Copy + 'static>(
    ui: &mut egui::Ui,
    label: &str,
    param: &EnumParam<T>,
    choices: &[(T, &str)],
    setter: &ParamSetter,
) {
    ui.horizontal(|ui| {
        ui.label(label);
        let current = param.value();
        for &(value, text) in choices {
            if ui.add(egui::Button::new(text).selected(current == value)).clicked() && current != value {
                setter.begin_set_parameter(param);
                setter.set_parameter(param, value);
                setter.end_set_parameter(param);
            }
        }
    });
}

fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(6.0);
    ui.label(RichText::new(title).strong().size(15.0).color(Color32::from_rgb(230, 200, 140)));
}

impl NiceEguiApp for EditorApp {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        nice_gui_ctx: GuiContext,
        frame: &mut Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        egui_ctx.set_visuals(egui::Visuals::dark());
        self.gui = Some(nice_gui_ctx);
        self.window = Some(frame.baseview_window().platform_handle());
        self.sync_persisted();
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut Frame) {
        let Some(gui) = self.gui.clone() else { return };
        self.sync_persisted();
        let status = self.shared.status();
        let now = self.shared.rt.clock_seconds.load(Ordering::Acquire);
        egui::Panel::top("header").show(ui, |ui| self.header(ui, &status));
        // Scrolls: the model's figures, the Load row and About run past the window's height.
        egui::Panel::left("controls").exact_size(300.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.controls(ui, &gui.param_setter(), &status));
        });
        egui::CentralPanel::default().show(ui, |ui| self.central(ui, &status, now));
        self.take_drops(ui);
        // The piano roll moves while playing (30 fps); otherwise only the status can change.
        let playing = self.shared.rt.playing.load(Ordering::Relaxed);
        ui.ctx().request_repaint_after(Duration::from_millis(if playing { 33 } else { 250 }));
    }
}

/// A line of the status: green when all is well, red when not.
fn status_line(ui: &mut egui::Ui, ok: bool, text: String) {
    ui.label(RichText::new(text).color(if ok { OK_TEXT } else { ERROR_TEXT }));
}

/// A small print note under a status line.
fn note(ui: &mut egui::Ui, text: &str) {
    ui.label(RichText::new(text).small());
}

/// The built-in piano's samples: ready, loading, or why not.
fn piano_status(ui: &mut egui::Ui, status: &Status) {
    match &status.piano {
        Some(Ok(loaded)) => status_line(ui, true, format!("Piano ready ({loaded})")),
        Some(Err(why)) => {
            status_line(ui, false, why.clone());
            note(
                ui,
                "`cargo xtask samples` fetches them (Salamander Grand Piano, npm) and `cargo xtask install` puts them \
                 beside the plugin. MIDI out works without them.",
            );
        }
        None if status.started => status_line(ui, true, "Piano samples: loading…".into()),
        None => {}
    }
}

fn short_path(path: &str) -> String {
    let p = std::path::Path::new(path);
    match (p.parent().and_then(|d| d.file_name()), p.file_name()) {
        (Some(d), Some(f)) => format!("…/{}/{}", d.to_string_lossy(), f.to_string_lossy()),
        _ => path.to_string(),
    }
}

impl EditorApp {
    /// The title, a light and a few words on what the plugin does now, and the model's name.
    fn header(&self, ui: &mut egui::Ui, status: &Status) {
        ui.horizontal(|ui| {
            ui.label(RichText::new("pianoforte").size(22.0).strong().color(ACCENT));
            ui.add_space(12.0);
            let (dot, words) = self.activity(status);
            let (rect, _) = ui.allocate_exact_size(Vec2::splat(14.0), Sense::hover());
            ui.painter().circle_filled(rect.center(), 6.0, dot);
            ui.label(words);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if let Some(model) = &status.model {
                    ui.label(RichText::new(&model.name).italics());
                }
            });
        });
    }

    /// What the plugin does now: a colour and words.
    fn activity(&self, status: &Status) -> (Color32, &'static str) {
        if !status.started {
            (Color32::GRAY, "waiting for the host to start the plugin")
        } else if status.engine_error.is_some() || status.model.is_none() {
            (Color32::from_rgb(220, 70, 60), "silent: see Status")
        } else if status.listening {
            (GREEN, "listening to you")
        } else if self.shared.rt.playing.load(Ordering::Relaxed) {
            let words = if self.params.perform.value() {
                "performing the track's part"
            } else if status.performing.is_some() {
                "playing your part"
            } else {
                "playing"
            };
            (GREEN, words)
        } else {
            (Color32::from_rgb(230, 180, 60), "ready (start the transport or press Play)")
        }
    }

    /// The piano roll (under the time it follows) over two columns: the status and the clips.
    fn central(&mut self, ui: &mut egui::Ui, status: &Status, now: f64) {
        let (area, _) = ui.allocate_exact_size(Vec2::new(ui.available_width(), ROLL_HEIGHT), Sense::hover());
        let (caption, roll) = area.split_top_bottom_at_y(area.min.y + CAPTION_HEIGHT);
        let text = timing_caption(status.following.as_ref(), self.params.timing.value());
        let colour = if status.following.is_some() { ACCENT } else { Color32::GRAY };
        ui.painter().text(caption.left_center(), Align2::LEFT_CENTER, text, FontId::proportional(13.0), colour);
        self.piano_roll(ui, roll, now, status.following);
        // Two columns, left-aligned (egui's `columns` justifies wrapped text).
        let half = (ui.available_width() / 2.0 - 8.0).max(100.0);
        let size = Vec2::new(half, ui.available_height().max(100.0));
        let layout = egui::Layout::top_down(egui::Align::Min);
        ui.horizontal_top(|ui| {
            ui.allocate_ui_with_layout(size, layout, |ui| {
                ui.set_width(half);
                section(ui, "Status");
                self.status_ui(ui, status);
            });
            ui.allocate_ui_with_layout(size, layout, |ui| {
                ui.set_width(half);
                section(ui, "Clips");
                self.clips_ui(ui, now);
            });
        });
    }

    /// Files dragged over the editor: a MIDI clip dropped on it is performed (Perform my part);
    /// while files hover, the window says so.
    fn take_drops(&mut self, ui: &egui::Ui) {
        let (hovering, dropped) = ui.ctx().input(|i| (!i.raw.hovered_files.is_empty(), i.raw.dropped_files.clone()));
        if hovering {
            let rect = ui.ctx().content_rect();
            let painter = ui.ctx().layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop")));
            painter.rect_filled(rect, 0.0, Color32::from_black_alpha(200));
            let text = "Drop a MIDI clip: pianoforte performs it like a pianist";
            painter.text(rect.center(), Align2::CENTER_CENTER, text, FontId::proportional(22.0), ACCENT);
        }
        let Some(path) = dropped.first().map(|f| f.path().to_path_buf()) else { return };
        if !is_midi_file(&path) {
            self.set_clip_message(Err(format!(
                "{} is not a MIDI file (.mid): drop a MIDI clip to have it performed",
                file_name(&path.to_string_lossy())
            )));
            return;
        }
        drag::log(|| format!("dropped {}", path.display()));
        self.set_clip_message(Ok(format!("performing {}…", file_name(&path.to_string_lossy()))));
        let seed = crate::plugin::player::start_seed(self.params.seed.value(), 0);
        self.writer.perform(path, seed, self.params.clips_folder());
    }

    /// The engine's status in words.
    fn status_ui(&self, ui: &mut egui::Ui, status: &Status) {
        self.performing_status(ui, status);
        self.runtime_status(ui, status);
        self.model_status(ui, status);
        piano_status(ui, status);
        self.counters(ui, status);
    }

    /// Perform my part: the performed clip that plays instead of the improvisation (its name on a
    /// line of its own, cut at the column's edge: clip names are long).
    fn performing_status(&self, ui: &mut egui::Ui, status: &Status) {
        let Some(name) = &status.performing else { return };
        ui.horizontal(|ui| {
            ui.label(RichText::new("Performing your part").color(ACCENT));
            if ui.small_button("Improvise again").clicked() {
                self.params.set_performed_clip("");
                self.shared.rt.wake_engine();
            }
        });
        ui.add(egui::Label::new(RichText::new(name).color(ACCENT).small()).truncate()).on_hover_text(name);
    }

    fn runtime_status(&self, ui: &mut egui::Ui, status: &Status) {
        match &status.runtime {
            Some(Ok(path)) => {
                status_line(ui, true, "ONNX Runtime loaded".into());
                ui.label(RichText::new(short_path(path)).small().weak());
            }
            Some(Err(why)) => {
                status_line(ui, false, format!("ONNX Runtime not loaded, so the plugin is silent: {why}"));
                if let Some(folder) = &self.plugin_folder {
                    let library = crate::engine::runtime::library_file_name();
                    let folder = folder.display();
                    note(
                        ui,
                        &format!("The plugin looks for {library} beside its own file, in {folder}; `cargo xtask install` puts it there."),
                    );
                }
            }
            None if status.started => status_line(ui, true, "ONNX Runtime: loading…".into()),
            None => status_line(ui, false, "The engine starts when the host starts the plugin.".into()),
        }
    }

    fn model_status(&self, ui: &mut egui::Ui, status: &Status) {
        if let Some(loading) = &status.loading {
            status_line(ui, true, format!("loading {loading}…"));
        } else if status.model.is_some() {
            status_line(ui, true, "Model loaded and checked".into());
        } else if status.started {
            status_line(ui, false, "No model loaded".into());
        }
        // What Key "Any" chose, so the rest of the song can follow the piano.
        let chosen = status.chosen_key.as_deref();
        if let (KEY_ANY, Some(name)) = (self.params.key.value(), chosen) {
            status_line(ui, true, format!("Key Any: playing in {name}"));
        }
        if let Some(e) = &status.model_error {
            let keeps = if status.model.is_some() { " (the model above keeps playing)" } else { "" };
            status_line(ui, false, format!("Model not loaded: {e}{keeps}"));
        }
        if let Some(e) = &status.engine_error {
            status_line(ui, false, e.clone());
        }
    }

    /// Late and dropped events, notes played, the engine thread's CPU share.
    fn counters(&self, ui: &mut egui::Ui, status: &Status) {
        let rt = &self.shared.rt;
        let skipped = rt.skipped_late.load(Ordering::Relaxed);
        if skipped > 0 {
            status_line(ui, false, format!("{skipped} late events skipped (the engine fell behind in real time)"));
        }
        let dropped = rt.dropped_output.load(Ordering::Relaxed);
        if dropped > 0 {
            status_line(ui, false, format!("{dropped} MIDI out events the host had no room for (the piano played them)"));
        }
        let dropped_input = rt.dropped_input.load(Ordering::Relaxed);
        if dropped_input > 0 {
            status_line(ui, false, format!("{dropped_input} incoming events dropped: more than one buffer holds"));
        }
        if let Some(warning) = &status.render_warning {
            status_line(ui, false, warning.clone());
        }
        if status.alive_seconds > 0.0 {
            let notes = rt.notes_played.load(Ordering::Relaxed);
            let cpu = 100.0 * status.busy_seconds / status.alive_seconds;
            ui.label(RichText::new(format!("{notes} notes played · engine thread {cpu:.1}% CPU")).weak());
        }
    }

    /// The left panel: performance parameters, the model and its figures, About.
    fn controls(&mut self, ui: &mut egui::Ui, setter: &ParamSetter, status: &Status) {
        section(ui, "Performance");
        ui.horizontal(|ui| {
            let play = self.params.play.value();
            let label = if play { "Stop playing (Play is on)" } else { "Play without transport" };
            if ui.add(egui::Button::new(label).selected(play).min_size(Vec2::new(200.0, 28.0))).clicked() {
                setter.begin_set_parameter(&self.params.play);
                setter.set_parameter(&self.params.play, !play);
                setter.end_set_parameter(&self.params.play);
            }
        });
        let p = &*self.params;
        choice_row(ui, "Mode", &p.mode, &[(Mode::Free, "Free"), (Mode::Continue, "Continue my playing")], setter);
        ui.horizontal(|ui| {
            let on = p.perform.value();
            let label = format!("Perform my part ({:.1} s behind)", crate::perform::live::LATENCY);
            if ui.add(egui::Button::new(label).selected(on)).clicked() {
                setter.begin_set_parameter(&p.perform);
                setter.set_parameter(&p.perform, !on);
                setter.end_set_parameter(&p.perform);
            }
        });
        choice_row(ui, "Timing", &p.timing, &[(Timing::Song, "Song tempo"), (Timing::Free, "Free")], setter);
        egui::Grid::new("params").num_columns(2).spacing([8.0, 8.0]).show(ui, |ui| {
            slider_row(ui, "Tempo", &p.tempo, setter);
            slider_row(ui, "Tightness", &p.tightness, setter);
            slider_row(ui, "Temperature", &p.temperature, setter);
            slider_row(ui, "Motifs", &p.motifs, setter);
            slider_row(ui, "Density", &p.density, setter);
            slider_row(ui, "Key", &p.key, setter);
            slider_row(ui, "Seed", &p.seed, setter);
            slider_row(ui, "Velocity min", &p.velocity_min, setter);
            slider_row(ui, "Velocity max", &p.velocity_max, setter);
            slider_row(ui, "Lowest key", &p.key_low, setter);
            slider_row(ui, "Highest key", &p.key_high, setter);
            slider_row(ui, "Sound", &p.sound, setter);
            slider_row(ui, "Volume", &p.volume, setter);
        });
        ui.label(
            RichText::new(
                "Perform my part: the track's own MIDI part is played as a pianist would, the time shown behind it \
                 (reported to the host, which lines it up); or drop a MIDI clip on this window. \
                 Timing: on the song's bars and beats, or free. Tempo: used when the host tells no tempo. \
                 Tightness: how closely onsets sit where pianists place them in the beat. \
                 Temperature: lower is safer, higher more adventurous. Motifs: how strongly figures played \
                 before come back. Density: notes per second, or Auto. A new Seed starts a new performance.",
            )
            .small()
            .weak(),
        );

        section(ui, "Model");
        if let Some(model) = &status.model {
            ui.label(RichText::new(&model.name).strong());
            egui::Grid::new("card").num_columns(2).show(ui, |ui| {
                for (label, value) in &model.figures {
                    ui.label(RichText::new(label).weak());
                    ui.label(value);
                    ui.end_row();
                }
            });
            ui.label(RichText::new(format!("from: {}", status.model_origin)).small().weak());
        } else {
            ui.label(RichText::new("no model loaded").weak());
        }
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut self.model_path).hint_text("/path/to/model.onnx").desired_width(190.0));
            if ui.button("Load").clicked() && !self.model_path.trim().is_empty() {
                let path = PathBuf::from(self.model_path.trim());
                if !self.shared.send(Command::LoadModel(Some(path))) {
                    self.shared.update_status(|s| s.model_error = Some("the engine is not running yet (start the host's audio)".into()));
                }
            }
        });
        if ui.button("Use the built-in model").clicked() {
            self.model_path.clear();
            self.shared.send(Command::LoadModel(None));
        }
        egui::CollapsingHeader::new("About").show(ui, |ui| {
            ui.label(RichText::new(ABOUT).small());
            ui.label(RichText::new(crate::piano::layout::CREDITS).small());
        });
    }

    fn piano_roll(&self, ui: &egui::Ui, rect: Rect, now: f64, following: Option<Following>) {
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 4.0, Color32::from_rgb(22, 24, 30));
        if let Some(following) = following {
            paint_song_grid(&painter, rect, now, &following);
        }
        let pedal_band = 12.0;
        let keys = Rect::from_min_max(rect.min, Pos2::new(rect.max.x, rect.max.y - pedal_band - 2.0));
        let (low, high) = (Pitch::LOWEST.midi() as f32, Pitch::HIGHEST.midi() as f32);
        let key_h = keys.height() / (high - low + 1.0);
        let x_of = |t: f64| rect.max.x - ((now - t) / ROLL_SECONDS) as f32 * rect.width();
        let y_of = |k: u8| keys.max.y - (k as f32 - low + 1.0) * key_h;
        // C lines and labels.
        for c in (24..=Pitch::HIGHEST.midi()).step_by(12) {
            let y = y_of(c) + key_h;
            painter.line_segment([Pos2::new(rect.min.x, y), Pos2::new(rect.max.x, y)], Stroke::new(1.0, Color32::from_rgb(40, 44, 54)));
            painter.text(
                Pos2::new(rect.min.x + 3.0, y - 1.0),
                Align2::LEFT_BOTTOM,
                note_name(c as i32),
                FontId::proportional(9.0),
                Color32::from_rgb(90, 96, 110),
            );
        }
        // Key range.
        let (a, b) = (self.params.key_low.value(), self.params.key_high.value());
        let (kl, kh) = (a.min(b) as u8, a.max(b) as u8);
        if kl > Pitch::LOWEST.midi() || kh < Pitch::HIGHEST.midi() {
            let band = Rect::from_min_max(Pos2::new(rect.max.x - 4.0, y_of(kh)), Pos2::new(rect.max.x, y_of(kl) + key_h));
            painter.rect_filled(band, 0.0, Color32::from_rgb(230, 200, 140));
        }
        let Ok(take) = self.shared.take.lock() else {
            return;
        };
        let from = now - ROLL_SECONDS;
        let pedal_rect = |t0: f64, t1: f64| {
            Rect::from_min_max(
                Pos2::new(x_of(t0).max(rect.min.x), rect.max.y - pedal_band),
                Pos2::new(x_of(t1).min(rect.max.x), rect.max.y),
            )
        };
        // Start a little earlier so notes and pedal already sounding at the left edge show.
        pair_played(
            take.since(from - 6.0),
            now,
            |n| {
                if n.end >= from && Pitch::new(n.key).is_some() {
                    let r = Rect::from_min_max(
                        Pos2::new(x_of(n.start).max(rect.min.x), y_of(n.key)),
                        Pos2::new(x_of(n.end).max(x_of(n.start) + 2.0).min(rect.max.x), y_of(n.key) + key_h.max(2.0)),
                    );
                    painter.rect_filled(r, 1.0, velocity_colour(n.velocity, n.input));
                }
            },
            |down, up| {
                if up.is_none_or(|up| up >= from) {
                    painter.rect_filled(pedal_rect(down, up.unwrap_or(now)), 2.0, Color32::from_rgb(120, 100, 200));
                }
            },
        );
        drop(take);
        painter.text(
            Pos2::new(rect.max.x - 4.0, rect.max.y - pedal_band - 3.0),
            Align2::RIGHT_BOTTOM,
            "pedal",
            FontId::proportional(9.0),
            Color32::from_rgb(120, 110, 170),
        );
        painter.rect_stroke(rect, 4.0, Stroke::new(1.0, Color32::from_rgb(60, 64, 76)), StrokeKind::Inside);
    }

    fn clips_ui(&mut self, ui: &mut egui::Ui, now: f64) {
        self.poll_drag();
        let choice = self.clip_length_row(ui, now);
        self.drag_handle(ui, choice, now);
        self.folder_row(ui);
        self.clip_message(ui);
        self.refresh_clip_files();
        self.clip_list(ui);
    }

    /// The clip length menu and Save clip; returns the length chosen.
    fn clip_length_row(&mut self, ui: &mut egui::Ui, now: f64) -> ClipChoice {
        let choice = ClipChoice::of(&self.params);
        let mut chosen = choice;
        ui.horizontal(|ui| {
            egui::ComboBox::from_id_salt("clip-length").selected_text(choice.label()).show_ui(ui, |ui| {
                for c in CLIP_CHOICES {
                    ui.selectable_value(&mut chosen, c, c.label());
                }
            });
            if ui.add(egui::Button::new(RichText::new("Save clip").strong()).min_size(Vec2::new(90.0, 24.0))).clicked() {
                // The writer's thread copies the take and writes the file; the message follows.
                self.set_clip_message(Ok("saving…".into()));
                self.writer.save(now, chosen.length(), self.params.clips_folder());
            }
        });
        if chosen != choice {
            chosen.store(&self.params);
        }
        chosen
    }

    fn folder_row(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label("Folder");
            // The default folder comes from the writer (finding it reads the user's settings).
            let hint = self.writer.default_folder().map_or_else(|| "the default clips folder".into(), |f| f.display().to_string());
            let field = egui::TextEdit::singleline(&mut self.clips_folder).hint_text(hint).desired_width(ui.available_width());
            if ui.add(field).changed()
                && let Ok(mut stored) = self.params.clips_folder.lock()
            {
                *stored = self.clips_folder.clone();
                self.seen_clips_folder = self.clips_folder.clone();
            }
        });
    }

    /// The last message about clips (saved, dragged, or why not), else how to drag.
    fn clip_message(&self, ui: &mut egui::Ui) {
        match relock(&self.shared.clip_message).clone() {
            Some(Ok(m)) => ui.label(RichText::new(m).small().color(OK_TEXT)),
            Some(Err(e)) => ui.label(RichText::new(e).small().color(ERROR_TEXT)),
            None => ui.label(
                RichText::new(
                    "Drag the handle (or a clip below) onto a track in your DAW; it lands on the song's bars. \
                     Drop a MIDI clip here and pianoforte performs it.",
                )
                .small()
                .weak(),
            ),
        };
    }

    fn set_clip_message(&self, message: Result<String, String>) {
        *relock(&self.shared.clip_message) = Some(message);
    }

    /// The remembered clips, newest first: a drag grip for each file there, else "missing".
    fn clip_list(&mut self, ui: &mut egui::Ui) {
        let list = self.clip_files.clone();
        egui::ScrollArea::vertical().max_height(150.0).show(ui, |ui| {
            for (path, exists) in &list {
                ui.horizontal(|ui| if *exists { self.clip_row(ui, path) } else { missing_clip_row(ui, path) });
            }
        });
    }

    fn clip_row(&mut self, ui: &mut egui::Ui, path: &str) {
        let grip = clip_grip(ui);
        if self.drag_begins(ui, &grip) {
            let path = PathBuf::from(path);
            let file = remembered(self.params.clone(), move || Ok(path));
            self.start_drag(None, file);
        }
        if ui.small_button("copy path").clicked() {
            ui.ctx().copy_text(path.to_string());
        }
        // Long names end in "…" at the panel's edge; the whole path shows on hover.
        ui.add(egui::Label::new(file_name(path)).truncate()).on_hover_text(path);
    }

    /// The "drag me into your DAW" handle for the selection: pressing and moving writes the
    /// clip (unless this very clip was written already) and drags the file.
    fn drag_handle(&mut self, ui: &mut egui::Ui, choice: ClipChoice, now: f64) {
        let size = Vec2::new(ui.available_width().min(320.0), 40.0);
        let (rect, response) = ui.allocate_exact_size(size, Sense::drag());
        let active = self.drag.is_some() || response.dragged();
        paint_drag_handle(ui, rect, active, response.hovered(), choice);
        if self.handle_rect != Some(rect) {
            self.handle_rect = Some(rect);
            drag::log(|| format!("handle {} {} {} {}", rect.min.x, rect.min.y, rect.width(), rect.height()));
        }
        let response = response.on_hover_cursor(egui::CursorIcon::Grab);
        if self.drag_begins(ui, &response) {
            self.drag_selection(choice.length(), now);
        }
    }

    /// Drags a clip of the selection: what it needs is copied here under the take's lock (a
    /// copy in memory); the drag's thread builds and writes it.
    fn drag_selection(&mut self, length: ClipLength, now: f64) {
        let (selection, source) = {
            let take = relock(&self.shared.take);
            ((length, now.to_bits(), take.len()), take.clip_source(now, length))
        };
        match source {
            Ok(source) => {
                let file = self.selection_file(source, selection);
                self.start_drag(Some(selection), file);
            }
            Err(e) => self.set_clip_message(Err(format!("nothing to drag: {e}"))),
        }
    }

    /// What the drag's thread does for a drag of the selection: reuses the file written for
    /// this very selection when it is still there, else writes the clip into the clips folder.
    fn selection_file(&self, source: ClipSource, selection: Selection) -> impl FnOnce() -> Result<PathBuf, String> + Send + 'static {
        let written = self.dragged.as_ref().filter(|(s, _)| *s == selection).map(|(_, path)| path.clone());
        let configured = self.params.clips_folder();
        remembered(self.params.clone(), move || {
            if let Some(path) = written.filter(|p| p.exists()) {
                return Ok(path);
            }
            let folder = clips::clips_folder(&configured);
            Ok(clips::write_clip(&source.clip()?, &folder, |path, bytes| std::fs::write(path, bytes))?.path)
        })
    }
    /// Whether a drag out of `grip` begins now: pressed on it and moved a few pixels. (Not
    /// egui's own drag state alone: while the drag runs our X connection holds the pointer, and
    /// egui may not see the release; a new press on the grip must start a new drag regardless.)
    fn drag_begins(&mut self, ui: &egui::Ui, grip: &egui::Response) -> bool {
        if self.drag.is_some() {
            return false;
        }
        let (pressed, down, pos) = ui.input(|i| (i.pointer.primary_pressed(), i.pointer.primary_down(), i.pointer.latest_pos()));
        if pressed && let Some(p) = pos.filter(|p| grip.rect.contains(*p)) {
            self.press = Some((grip.id, p));
        }
        match (self.press, pos) {
            (Some((id, origin)), Some(p)) if id == grip.id && down && origin.distance(p) > 4.0 => {
                self.press = None;
                true
            }
            (Some((id, _)), _) if id == grip.id && !down => {
                self.press = None;
                false
            }
            _ => grip.drag_started(),
        }
    }

    /// Starts a drag of what `file` writes or names (on the drag's thread); `selection` when it
    /// drags the selection.
    fn start_drag(&mut self, selection: Option<Selection>, file: impl FnOnce() -> Result<PathBuf, String> + Send + 'static) {
        let Some(window) = &self.window else {
            return self.set_clip_message(Err("cannot drag: the editor has no window".into()));
        };
        match drag::start_drag(window, &self.shared, file) {
            Ok(drag) => self.drag = Some((drag, selection)),
            Err(e) => {
                drag::log(|| format!("end Failed({e:?}) before the drag"));
                self.set_clip_message(Err(format!("cannot drag: {e}")));
            }
        }
    }

    /// What the drag in progress reports: the file written, the end.
    fn poll_drag(&mut self) {
        while let Some(event) = self.drag.as_ref().and_then(|(drag, _)| drag.poll()) {
            match event {
                DragEvent::Written(path) => self.drag_written(path),
                DragEvent::Ended(end) => self.drag_ended(end),
            }
        }
    }

    /// The dragged file exists (and is in the remembered list): the same drag again reuses it.
    fn drag_written(&mut self, path: PathBuf) {
        if let Some((_, Some(selection))) = &self.drag {
            self.dragged = Some((*selection, path.clone()));
        }
        self.clip_files_asked = None;
        self.set_clip_message(Ok(format!("dragging {}", file_name(&path.to_string_lossy()))));
    }

    fn drag_ended(&mut self, end: DragEnd) {
        self.drag = None;
        if matches!(end, DragEnd::Failed(_)) {
            self.dragged = None;
        }
        let message = match &end {
            DragEnd::Failed(_) => Err(end.describe()),
            _ => Ok(end.describe()),
        };
        self.set_clip_message(message);
    }

    /// The remembered clips with whether each file exists, as the writer last found (it looks
    /// once a second, and when the list changes; this thread never touches the disk).
    fn refresh_clip_files(&mut self) {
        let paths = self.params.clips();
        let changed = paths.len() != self.clip_files.len() || paths.iter().zip(&self.clip_files).any(|(a, (b, _))| a != b);
        if changed {
            self.clip_files_asked = None;
        }
        if self.clip_files_asked.is_none_or(|t| t.elapsed() >= CLIP_CHECK_INTERVAL) && !self.writer.checking() {
            self.writer.check(paths.clone());
            self.clip_files_asked = Some(Instant::now());
        }
        // A file the writer has not looked at yet shows as it did (a new one: as there).
        let mut known: HashMap<String, bool> = self.clip_files.drain(..).collect();
        known.extend(self.writer.checked().unwrap_or_default());
        self.clip_files = paths
            .into_iter()
            .map(|path| {
                let exists = known.get(&path).copied().unwrap_or(true);
                (path, exists)
            })
            .collect();
    }
}

/// What the line above the piano roll says: the tempo and meter followed, or free time.
fn timing_caption(following: Option<&Following>, timing: Timing) -> String {
    match (following, timing) {
        (Some(following), _) => format!("Following the song: {}", following.describe()),
        (None, Timing::Free) => "Free time".into(),
        (None, Timing::Song) => "Song tempo: the bars show once the performance starts".into(),
    }
}

/// The song's bar lines (stronger) and beat lines (faint) on the piano roll, behind the notes.
fn paint_song_grid(painter: &egui::Painter, rect: Rect, now: f64, following: &Following) {
    let seconds_per_pixel = ROLL_SECONDS / rect.width().max(1.0) as f64;
    let visible = now - ROLL_SECONDS..now;
    for (time, bar) in song_grid(visible, following, MIN_LINE_GAP as f64 * seconds_per_pixel) {
        let x = rect.max.x - ((now - time) / seconds_per_pixel) as f32;
        let colour = if bar { Color32::from_rgb(74, 80, 100) } else { Color32::from_rgb(36, 39, 49) };
        painter.line_segment([Pos2::new(x, rect.min.y), Pos2::new(x, rect.max.y)], Stroke::new(1.0, colour));
    }
}

/// The clock times of the song's lines within `visible`, each with whether it is a bar line.
/// Lines are at least `min_gap` seconds apart: beat lines closer than that are left out, and
/// bar lines then thinned to every few bars, so a fast tempo never draws thousands of them.
fn song_grid(visible: Range<f64>, following: &Following, min_gap: f64) -> impl Iterator<Item = (f64, bool)> + use<> {
    let beat = following.meter.beat_quarters() * 60.0 / following.bpm;
    let beats_per_bar = following.meter.beats_per_bar().max(1) as i64;
    let bar = beat * beats_per_bar as f64;
    // Every line is a multiple of `step` beats from the bar line (a bar line again when it is a
    // multiple of the bar's beats).
    let step = if beat >= min_gap { 1 } else { beats_per_bar.saturating_mul((min_gap / bar).ceil().max(1.0) as i64) };
    let span = beat * step as f64;
    let bar_line = following.bar_line;
    // A tempo that makes no sense (0, NaN from a host) draws nothing.
    let (first, last) = if span.is_finite() && span > 0.0 && bar_line.is_finite() {
        (((visible.start - bar_line) / span).ceil() as i64, ((visible.end - bar_line) / span).floor() as i64)
    } else {
        (1, 0)
    };
    (first..=last).map(move |n| {
        let index = n.saturating_mul(step);
        (bar_line + index as f64 * beat, index.rem_euclid(beats_per_bar) == 0)
    })
}

/// The "drag me into your DAW" handle: a grip of dots, what to do, and what it drags.
fn paint_drag_handle(ui: &egui::Ui, rect: Rect, active: bool, hovered: bool, choice: ClipChoice) {
    let fill = if active {
        Color32::from_rgb(92, 74, 40)
    } else if hovered {
        Color32::from_rgb(70, 58, 36)
    } else {
        Color32::from_rgb(52, 46, 34)
    };
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 6.0, fill);
    painter.rect_stroke(rect, 6.0, Stroke::new(1.5, ACCENT), StrokeKind::Inside);
    for row in 0..3 {
        for col in 0..2 {
            let c = Pos2::new(rect.min.x + 14.0 + col as f32 * 7.0, rect.center().y - 7.0 + row as f32 * 7.0);
            painter.circle_filled(c, 2.0, ACCENT);
        }
    }
    let text_at = |dy: f32| Pos2::new(rect.min.x + 34.0, rect.center().y + dy);
    painter.text(text_at(-8.0), Align2::LEFT_CENTER, "drag me into your DAW", FontId::proportional(15.0), ACCENT);
    let what = if drag::supported() {
        format!("{} as MIDI, on the song's bars", choice.label())
    } else {
        "dragging out needs Linux (X11) for now: use Save clip".to_string()
    };
    painter.text(text_at(9.0), Align2::LEFT_CENTER, what, FontId::proportional(11.0), Color32::from_rgb(200, 185, 150));
}

/// A clip row's drag grip: a label that senses drags and is not selectable (pressing on a
/// selectable one would start selecting the editor's text).
fn clip_grip(ui: &mut egui::Ui) -> egui::Response {
    let text = RichText::new(" drag ").color(Color32::from_rgb(30, 26, 20)).background_color(ACCENT);
    ui.add(egui::Label::new(text).selectable(false).sense(Sense::drag()))
        .on_hover_cursor(egui::CursorIcon::Grab)
        .on_hover_text("drag this clip into your DAW")
}

/// A remembered clip whose file is gone.
fn missing_clip_row(ui: &mut egui::Ui, path: &str) {
    ui.label(RichText::new("missing").small().color(ERROR_TEXT));
    ui.add(egui::Label::new(RichText::new(file_name(path)).weak().strikethrough()).truncate())
        .on_hover_text(format!("{path} no longer exists"));
}

/// Whether `path` names a MIDI file (.mid, .midi, .smf), as DAWs and file managers drop them.
fn is_midi_file(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| ["mid", "midi", "smf"].iter().any(|m| e.eq_ignore_ascii_case(m)))
}

fn file_name(path: &str) -> String {
    std::path::Path::new(path).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

/// `file`, after which the clip it names enters the remembered list, on the drag's thread: the
/// list gets it even when the editor closes before it hears of the file.
fn remembered(
    params: Arc<PianoforteParams>,
    file: impl FnOnce() -> Result<PathBuf, String> + Send + 'static,
) -> impl FnOnce() -> Result<PathBuf, String> + Send + 'static {
    move || {
        let path = file()?;
        params.remember_clip(&path);
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::beat_clock::Meter;
    use crate::plugin::events::{Midi, Played};
    use nice_plug::prelude::Params;

    #[test]
    fn the_editor_shows_the_restored_settings() {
        // Issue 9: nice-plug makes the editor before the host restores the project's state.
        let params = Arc::new(PianoforteParams::default());
        let mut app = EditorApp::new(params.clone(), Arc::new(Shared::default()));
        assert_eq!((app.model_path.as_str(), app.clips_folder.as_str()), ("", ""));
        let mut saved = PianoforteParams::default().serialize_fields();
        saved.insert("model-path".into(), serde_json::to_string("/models/mine.onnx").unwrap());
        saved.insert("clips-folder".into(), serde_json::to_string("/music/clips").unwrap());
        saved.insert("clips".into(), serde_json::to_string(&["/music/clips/a.mid"]).unwrap());
        params.deserialize_fields(&saved);
        app.sync_persisted();
        assert_eq!(app.model_path, "/models/mine.onnx");
        assert_eq!(app.clips_folder, "/music/clips");
        // The writer's thread looks at the file; the editor shows what it found.
        let began = Instant::now();
        while app.clip_files != [("/music/clips/a.mid".to_string(), false)] && began.elapsed() < Duration::from_secs(5) {
            app.refresh_clip_files();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(app.clip_files, vec![("/music/clips/a.mid".to_string(), false)], "a missing file shows as missing");
        // Text being typed stays until the remembered value itself changes.
        app.model_path = "/models/half-typ".into();
        app.sync_persisted();
        assert_eq!(app.model_path, "/models/half-typ");
        if let Ok(mut stored) = params.model_path.lock() {
            *stored = "/models/loaded.onnx".into();
        }
        app.sync_persisted();
        assert_eq!(app.model_path, "/models/loaded.onnx");
    }

    #[test]
    fn a_dragged_clip_is_remembered_when_the_editor_closes_mid_drag() {
        // Issue 18: the editor put a dragged clip into the list when it heard of the file; an
        // editor closed mid-drag never heard of it.
        let params = Arc::new(PianoforteParams::default());
        let shared = Arc::new(Shared::default());
        let app = EditorApp::new(params.clone(), shared.clone());
        {
            let mut take = relock(&shared.take);
            take.push(Played { time: 1.0, midi: Midi::NoteOn { key: 60, velocity: 80 }, input: false });
            take.push(Played { time: 2.0, midi: Midi::NoteOff { key: 60 }, input: false });
        }
        let folder = std::env::temp_dir().join(format!("pianoforte-editor-test-{}", std::process::id()));
        *params.clips_folder.lock().unwrap() = folder.display().to_string();
        let source = relock(&shared.take).clip_source(3.0, ClipLength::WholeTake).unwrap();
        let file = app.selection_file(source, (ClipLength::WholeTake, 0, 2));
        // The platform's part holds the pointer until the drag is stopped.
        let drag = drag::spawn(&shared, file, |_, stop| {
            while !stop() {
                std::thread::sleep(Duration::from_millis(1));
            }
            DragEnd::Cancelled
        })
        .unwrap();
        drop(app);
        drop(drag);
        shared.threads.join_all();
        let remembered = params.clips();
        assert_eq!(remembered.len(), 1, "{remembered:?}");
        assert!(std::path::Path::new(&remembered[0]).starts_with(&folder));
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[derive(Debug)]
    struct DroppedPath(std::path::PathBuf);

    impl egui::DroppedFile for DroppedPath {
        fn path(&self) -> &std::path::Path {
            &self.0
        }

        fn bytes(&self) -> Result<Vec<u8>, String> {
            std::fs::read(&self.0).map_err(|e| e.to_string())
        }
    }

    #[test]
    fn a_midi_file_dropped_on_the_editor_is_performed_anything_else_refused_in_words() {
        let params = Arc::new(PianoforteParams::default());
        let shared = Arc::new(Shared::default());
        let mut app = EditorApp::new(params.clone(), shared.clone());
        let folder = std::env::temp_dir().join(format!("pianoforte-drop-test-{}", std::process::id()));
        *params.clips_folder.lock().unwrap() = folder.display().to_string();
        let ctx = egui::Context::default();
        let mut drop_file = |path: &str| {
            let dropped: egui::DroppedFileHandle = Arc::new(DroppedPath(path.into()));
            let input = egui::RawInput { dropped_files: vec![dropped], ..Default::default() };
            let _ = ctx.run_ui(input, |ui| app.take_drops(ui));
            relock(&shared.clip_message).take()
        };
        let refused = drop_file("/music/notes.txt");
        assert!(refused.as_ref().is_some_and(|r| r.as_ref().is_err_and(|e| e.contains("notes.txt is not a MIDI file"))), "{refused:?}");
        let taken = drop_file("/music/My Part.MID");
        assert_eq!(taken, Some(Ok("performing My Part.MID…".to_string())));
        // The writer's thread reads it (here: not there) and says so.
        let began = Instant::now();
        let outcome = loop {
            if let Some(message) = relock(&shared.clip_message).take() {
                break message;
            }
            assert!(began.elapsed() < Duration::from_secs(10), "the writer never answered");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(outcome.as_ref().is_err_and(|e| e.contains("/music/My Part.MID: cannot read")), "{outcome:?}");
        assert!(params.clips().is_empty());
        shared.threads.join_all();
    }

    /// Presses on a clip row's grip and drags across the row's name, as a drag out starts.
    fn drag_a_grip_across_its_row(ctx: &egui::Context) {
        // One frame with these input events; where the grip is.
        let frame = |events: Vec<egui::Event>| {
            let input = egui::RawInput {
                screen_rect: Some(Rect::from_min_size(Pos2::ZERO, Vec2::new(600.0, 100.0))),
                events,
                ..Default::default()
            };
            let mut grip = Rect::NOTHING;
            let _ = ctx.run_ui(input, |ui| {
                ui.horizontal(|ui| {
                    grip = clip_grip(ui).rect;
                    ui.label("pianoforte 2026-11-29 14.03, bars 17-24, 92 bpm.mid");
                });
            });
            grip
        };
        let from = frame(vec![]).center();
        let button = |pos, pressed| egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::default(),
        };
        frame(vec![egui::Event::PointerMoved(from)]);
        frame(vec![button(from, true)]);
        let to = from + Vec2::new(300.0, 0.0);
        for step in 1..=10 {
            frame(vec![egui::Event::PointerMoved(from + (to - from) * step as f32 / 10.0)]);
        }
        frame(vec![button(to, false)]);
        frame(vec![]);
    }

    #[test]
    fn dragging_a_clip_grip_selects_no_text() {
        // Issue 18: the grip was a selectable label that also sensed drags; a drag out left the
        // editor's text selected.
        let ctx = egui::Context::default();
        drag_a_grip_across_its_row(&ctx);
        assert!(!ctx.plugin::<egui::text_selection::LabelSelectionState>().lock().has_selection());
    }

    fn following(bpm: f64, meter: &str, bar_line: f64) -> Following {
        Following { bpm, meter: Meter::parse(meter).unwrap(), bar_line, model_hears_beats: true }
    }

    #[test]
    fn the_song_grid_has_bars_and_beats_where_the_song_has_them() {
        // 120 BPM in 4/4 with a bar line at 1 s: a beat every 0.5 s, a bar every 2 s.
        let lines: Vec<_> = song_grid(0.0..3.2, &following(120.0, "4/4", 1.0), 0.1).collect();
        let beats = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0];
        let bars = [false, false, true, false, false, false, true];
        assert_eq!(lines, beats.into_iter().zip(bars).collect::<Vec<_>>());
        // 6/8: two beats of a dotted quarter (0.75 s) in a bar.
        let lines: Vec<_> = song_grid(10.0..13.0, &following(120.0, "6/8", 1.0), 0.1).collect();
        assert_eq!(lines, vec![(10.0, true), (10.75, false), (11.5, true), (12.25, false), (13.0, true)]);
    }

    #[test]
    fn the_song_grid_stays_sparse_when_its_lines_would_crowd() {
        // Beats closer than the gap are left out; the bars stay.
        let lines: Vec<_> = song_grid(0.0..8.0, &following(240.0, "4/4", 0.0), 0.5).collect();
        assert_eq!(lines.len(), 9);
        assert!(lines.iter().all(|&(_, bar)| bar));
        // Bars closer than the gap too (240 BPM in 1/32: 32 bars a second): every few bars, as
        // many lines as the gap lets the roll hold, not hundreds.
        let gap = 0.075;
        let lines: Vec<_> = song_grid(0.0..8.0, &following(240.0, "1/32", 0.25), gap).collect();
        assert!((50..=(8.0 / gap) as usize + 1).contains(&lines.len()), "{}", lines.len());
        assert!(lines.windows(2).all(|w| w[1].0 - w[0].0 >= gap && w[1].1));
        // A tempo that makes no sense draws nothing.
        assert_eq!(song_grid(0.0..8.0, &following(0.0, "4/4", 0.0), 0.1).count(), 0);
        assert_eq!(song_grid(0.0..8.0, &following(f64::NAN, "4/4", 0.0), 0.1).count(), 0);
    }

    #[test]
    fn the_caption_says_which_time_the_performance_keeps() {
        let song = following(126.0, "3/4", 0.0);
        assert_eq!(timing_caption(Some(&song), Timing::Song), "Following the song: 126.0 BPM, 3/4");
        assert_eq!(timing_caption(None, Timing::Free), "Free time");
        assert!(timing_caption(None, Timing::Song).starts_with("Song tempo"));
    }

    #[test]
    fn clip_choices_are_remembered() {
        let params = PianoforteParams::default();
        assert_eq!(ClipChoice::of(&params), ClipChoice::Seconds(30));
        ClipChoice::Bars(8).store(&params);
        assert_eq!(ClipChoice::of(&params), ClipChoice::Bars(8));
        assert_eq!(ClipChoice::Bars(8).length(), ClipLength::LastBars(8));
        ClipChoice::Seconds(0).store(&params);
        assert_eq!(ClipChoice::of(&params).length(), ClipLength::WholeTake);
    }
}
