//! The plugin's window (egui): every parameter, a live piano roll, the model and its card, the
//! engine's status in words, and clips.

use crate::codec::Pitch;
use crate::plugin::clips::{self, ClipLength};
use crate::plugin::drag::{self, Drag, DragEnd, DragEvent};
use crate::plugin::events::pair_played;
use crate::plugin::params::{KEY_ANY, KEY_NAMES, Mode, PianoforteParams, note_name};
use crate::plugin::shared::{Shared, Status};
use crate::plugin::worker::Command;
use egui::{Align2, Color32, FontId, Pos2, Rect, RichText, Sense, Stroke, StrokeKind, Vec2};
use nice_plug::context::gui::{GuiContext, ParamSetter};
use nice_plug::params::Param;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{EguiEditorState, Frame, NiceEguiApp};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub const WIDTH: f64 = 980.0;
pub const HEIGHT: f64 = 660.0;

/// The editor's size (logical pixels), shared with the wrapper.
pub fn default_state() -> Arc<EguiEditorState> {
    EguiEditorState::from_size(nice_plug::editor::dpi::LogicalSize::new(WIDTH, HEIGHT), 1.0)
}

/// Seconds of music the piano roll shows.
const ROLL_SECONDS: f64 = 8.0;
/// The parameter sliders' length: with the label and the value box it fits the 300 px panel.
const SLIDER_WIDTH: f32 = 120.0;
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
    /// The drag in progress.
    drag: Option<Drag>,
    /// The clip last written for a drag of the selection, and what it was made from (the
    /// selection, the clock, the take's length): the same drag again reuses the file.
    dragged: Option<((ClipLength, u64, usize), PathBuf)>,
    /// Remembered clips and whether their files exist, checked every CLIP_CHECK_INTERVAL.
    clip_files: Vec<(String, bool)>,
    clip_files_checked: Option<std::time::Instant>,
    /// Where the drag handle was drawn last (logged for the host tests when it moves).
    handle_rect: Option<Rect>,
    /// A press on a drag grip (which one, where), waiting for the pointer to move.
    press: Option<(egui::Id, Pos2)>,
}

/// Who made what, and on which terms (the piano samples' credits follow it).
const ABOUT: &str = "pianoforte: code under MIT OR Apache-2.0. The built-in model was trained on MAESTRO v2.0.0 \
(Hawthorne et al., 2019) and inherits its licence, CC BY-NC-SA 4.0: non-commercial use only, share-alike.";

impl EditorApp {
    pub fn new(params: Arc<PianoforteParams>, shared: Arc<Shared>) -> Self {
        let plugin_folder = crate::plugin::locate::own_folder();
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
            clip_files: Vec::new(),
            clip_files_checked: None,
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
        let setter = gui.param_setter();
        let status = self.shared.status();
        let now = self.shared.rt.clock_seconds.load(Ordering::Acquire);
        let playing = self.shared.rt.playing.load(Ordering::Relaxed);

        egui::Panel::top("header").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(RichText::new("pianoforte").size(22.0).strong().color(Color32::from_rgb(240, 210, 150)));
                ui.add_space(12.0);
                let (dot, words) = if !status.started {
                    (Color32::GRAY, "waiting for the host to start the plugin".to_string())
                } else if status.engine_error.is_some() || status.model.is_none() {
                    (Color32::from_rgb(220, 70, 60), "silent: see Status".to_string())
                } else if status.listening {
                    (Color32::from_rgb(90, 200, 110), "listening to you".to_string())
                } else if playing {
                    (Color32::from_rgb(90, 200, 110), "playing".to_string())
                } else {
                    (Color32::from_rgb(230, 180, 60), "ready (start the transport or press Play)".to_string())
                };
                let (rect, _) = ui.allocate_exact_size(Vec2::splat(14.0), Sense::hover());
                ui.painter().circle_filled(rect.center(), 6.0, dot);
                ui.label(words);
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if let Some(model) = &status.model {
                        ui.label(RichText::new(&model.name).italics());
                    }
                });
            });
        });

        // Scrolls: the model's figures, the Load row and About run past the window's height.
        egui::Panel::left("controls").exact_size(300.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.controls(ui, &setter, &status));
        });

        egui::CentralPanel::default().show(ui, |ui| {
            let roll_height = 300.0;
            let (rect, _) = ui.allocate_exact_size(Vec2::new(ui.available_width(), roll_height), Sense::hover());
            self.piano_roll(ui, rect, now);

            // Two columns, left-aligned (egui's `columns` justifies wrapped text).
            let half = (ui.available_width() / 2.0 - 8.0).max(100.0);
            let height = ui.available_height().max(100.0);
            let layout = egui::Layout::top_down(egui::Align::Min);
            ui.horizontal_top(|ui| {
                ui.allocate_ui_with_layout(Vec2::new(half, height), layout, |ui| {
                    ui.set_width(half);
                    section(ui, "Status");
                    let line = |ui: &mut egui::Ui, ok: bool, text: String| {
                        let colour = if ok { Color32::from_rgb(120, 200, 120) } else { Color32::from_rgb(235, 110, 90) };
                        ui.label(RichText::new(text).color(colour));
                    };
                    match &status.runtime {
                        Some(Ok(path)) => {
                            line(ui, true, "ONNX Runtime loaded".into());
                            ui.label(RichText::new(short_path(path)).small().weak());
                        }
                        Some(Err(why)) => {
                            line(ui, false, format!("ONNX Runtime not loaded, so the plugin is silent: {why}"));
                            if let Some(folder) = &self.plugin_folder {
                                ui.label(
                                    RichText::new(format!(
                                        "The plugin looks for {} beside its own file, in {}; `cargo xtask install` puts it there.",
                                        crate::engine::runtime::library_file_name(),
                                        folder.display()
                                    ))
                                    .small(),
                                );
                            }
                        }
                        None if status.started => line(ui, true, "ONNX Runtime: loading…".into()),
                        None => line(ui, false, "The engine starts when the host starts the plugin.".into()),
                    }
                    if let Some(loading) = &status.loading {
                        line(ui, true, format!("loading {loading}…"));
                    } else if status.model.is_some() {
                        line(ui, true, "Model loaded and checked".into());
                    } else if status.started {
                        line(ui, false, "No model loaded".into());
                    }
                    // What Key "Any" chose, so the rest of the song can follow the piano.
                    let chosen = status.chosen_key.and_then(|k| KEY_NAMES.get(k as usize));
                    if let (KEY_ANY, Some(name)) = (self.params.key.value(), chosen) {
                        line(ui, true, format!("Key Any: playing in {name}"));
                    }
                    if let Some(e) = &status.model_error {
                        let keeps = if status.model.is_some() { " (the model above keeps playing)" } else { "" };
                        line(ui, false, format!("Model not loaded: {e}{keeps}"));
                    }
                    if let Some(e) = &status.engine_error {
                        line(ui, false, e.clone());
                    }
                    match &status.piano {
                        Some(Ok(note)) => line(ui, true, format!("Piano ready ({note})")),
                        Some(Err(why)) => {
                            line(ui, false, why.clone());
                            ui.label(
                                RichText::new(
                                    "`cargo xtask samples` fetches them (Salamander Grand Piano, npm) and `cargo xtask install` puts them \
                                     beside the plugin. MIDI out works without them.",
                                )
                                .small(),
                            );
                        }
                        None if status.started => line(ui, true, "Piano samples: loading…".into()),
                        None => {}
                    }
                    let skipped = self.shared.rt.skipped_late.load(Ordering::Relaxed);
                    let dropped = self.shared.rt.dropped_output.load(Ordering::Relaxed);
                    if skipped + dropped > 0 {
                        line(ui, false, format!("{skipped} late events skipped, {dropped} dropped by the host"));
                    }
                    if status.alive_seconds > 0.0 {
                        ui.label(
                            RichText::new(format!(
                                "{} notes played · engine thread {:.1}% CPU",
                                self.shared.rt.notes_played.load(Ordering::Relaxed),
                                100.0 * status.busy_seconds / status.alive_seconds
                            ))
                            .weak(),
                        );
                    }
                });
                ui.allocate_ui_with_layout(Vec2::new(half, height), layout, |ui| {
                    ui.set_width(half);
                    section(ui, "Clips");
                    self.clips_ui(ui, now);
                });
            });
        });

        // The piano roll moves while playing (30 fps); otherwise only the status can change.
        let playing = self.shared.rt.playing.load(Ordering::Relaxed);
        ui.ctx().request_repaint_after(Duration::from_millis(if playing { 33 } else { 250 }));
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
        ui.horizontal(|ui| {
            ui.label("Mode");
            let mode = self.params.mode.value();
            for (value, label) in [(Mode::Free, "Free"), (Mode::Continue, "Continue my playing")] {
                if ui.add(egui::Button::new(label).selected(mode == value)).clicked() && mode != value {
                    setter.begin_set_parameter(&self.params.mode);
                    setter.set_parameter(&self.params.mode, value);
                    setter.end_set_parameter(&self.params.mode);
                }
            }
        });
        let p = &*self.params;
        egui::Grid::new("params").num_columns(2).spacing([8.0, 8.0]).show(ui, |ui| {
            slider_row(ui, "Temperature", &p.temperature, setter);
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
                "Temperature: lower is safer, higher more adventurous. Density: notes per second, or Auto. \
                 A new Seed starts a new performance.",
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

    fn piano_roll(&self, ui: &egui::Ui, rect: Rect, now: f64) {
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 4.0, Color32::from_rgb(22, 24, 30));
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
        let choice = ClipChoice::of(&self.params);
        ui.horizontal(|ui| {
            let mut chosen = choice;
            egui::ComboBox::from_id_salt("clip-length").selected_text(choice.label()).show_ui(ui, |ui| {
                for c in CLIP_CHOICES {
                    ui.selectable_value(&mut chosen, c, c.label());
                }
            });
            if chosen != choice {
                chosen.store(&self.params);
            }
            if ui.add(egui::Button::new(RichText::new("Save clip").strong()).min_size(Vec2::new(90.0, 24.0))).clicked() {
                let folder = clips::clips_folder(&self.params.clips_folder());
                // The take is copied under its lock; the file is written after (issue 9).
                let message = clips::save_clip_from(&self.shared.take, now, chosen.length(), &folder).map(|clip| {
                    self.params.remember_clip(&clip.path);
                    format!("saved {} ({} notes)", clip.path.display(), clip.notes)
                });
                self.set_clip_message(message);
            }
        });
        self.drag_handle(ui, choice, now);
        ui.horizontal(|ui| {
            ui.label("Folder");
            let response = ui.add(
                egui::TextEdit::singleline(&mut self.clips_folder)
                    .hint_text(clips::default_clips_folder().display().to_string())
                    .desired_width(ui.available_width()),
            );
            if response.changed()
                && let Ok(mut stored) = self.params.clips_folder.lock()
            {
                *stored = self.clips_folder.clone();
                self.seen_clips_folder = self.clips_folder.clone();
            }
        });
        if let Ok(message) = self.shared.clip_message.lock() {
            match &*message {
                Some(Ok(m)) => {
                    ui.label(RichText::new(m).small().color(Color32::from_rgb(120, 200, 120)));
                }
                Some(Err(e)) => {
                    ui.label(RichText::new(e).small().color(Color32::from_rgb(235, 110, 90)));
                }
                None => {
                    ui.label(
                        RichText::new("Drag the handle (or a clip below) onto a track in your DAW; it lands on the song's bars.")
                            .small()
                            .weak(),
                    );
                }
            }
        }
        self.refresh_clip_files();
        let list = self.clip_files.clone();
        egui::ScrollArea::vertical().max_height(150.0).show(ui, |ui| {
            for (path, exists) in &list {
                ui.horizontal(|ui| {
                    let name = std::path::Path::new(path).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                    if *exists {
                        let grip = ui
                            .add(
                                egui::Label::new(
                                    RichText::new(" drag ")
                                        .color(Color32::from_rgb(30, 26, 20))
                                        .background_color(Color32::from_rgb(240, 210, 150)),
                                )
                                .sense(Sense::drag()),
                            )
                            .on_hover_cursor(egui::CursorIcon::Grab)
                            .on_hover_text("drag this clip into your DAW");
                        if self.drag_begins(ui, &grip) {
                            let path = PathBuf::from(path);
                            self.start_drag(move || Ok(path));
                        }
                        if ui.small_button("copy path").clicked() {
                            ui.ctx().copy_text(path.clone());
                        }
                        // Long names end in "…" at the panel's edge; the whole path shows on hover.
                        ui.add(egui::Label::new(name).truncate()).on_hover_text(path.as_str());
                    } else {
                        ui.label(RichText::new("missing").small().color(Color32::from_rgb(235, 110, 90)));
                        ui.add(egui::Label::new(RichText::new(name).weak().strikethrough()).truncate())
                            .on_hover_text(format!("{path} no longer exists"));
                    }
                });
            }
        });
    }

    fn set_clip_message(&self, message: Result<String, String>) {
        if let Ok(mut m) = self.shared.clip_message.lock() {
            *m = Some(message);
        }
    }

    /// The "drag me into your DAW" handle for the selection: pressing and moving writes the
    /// clip (unless this very clip was written already) and drags the file.
    fn drag_handle(&mut self, ui: &mut egui::Ui, choice: ClipChoice, now: f64) {
        let size = Vec2::new(ui.available_width().min(320.0), 40.0);
        let (rect, response) = ui.allocate_exact_size(size, Sense::drag());
        let active = self.drag.is_some() || response.dragged();
        let hovered = response.hovered();
        let accent = Color32::from_rgb(240, 210, 150);
        let fill = if active {
            Color32::from_rgb(92, 74, 40)
        } else if hovered {
            Color32::from_rgb(70, 58, 36)
        } else {
            Color32::from_rgb(52, 46, 34)
        };
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 6.0, fill);
        painter.rect_stroke(rect, 6.0, Stroke::new(1.5, accent), StrokeKind::Inside);
        // A grip of dots on the left.
        for row in 0..3 {
            for col in 0..2 {
                let c = Pos2::new(rect.min.x + 14.0 + col as f32 * 7.0, rect.center().y - 7.0 + row as f32 * 7.0);
                painter.circle_filled(c, 2.0, accent);
            }
        }
        painter.text(
            Pos2::new(rect.min.x + 34.0, rect.center().y - 8.0),
            Align2::LEFT_CENTER,
            "drag me into your DAW",
            FontId::proportional(15.0),
            accent,
        );
        let what = if drag::supported() {
            format!("{} as MIDI, on the song's bars", choice.label())
        } else {
            "dragging out needs Linux (X11) for now: use Save clip".to_string()
        };
        painter.text(
            Pos2::new(rect.min.x + 34.0, rect.center().y + 9.0),
            Align2::LEFT_CENTER,
            what,
            FontId::proportional(11.0),
            Color32::from_rgb(200, 185, 150),
        );
        if self.handle_rect != Some(rect) {
            self.handle_rect = Some(rect);
            drag::log(|| format!("handle {} {} {} {}", rect.min.x, rect.min.y, rect.width(), rect.height()));
        }
        let response = response.on_hover_cursor(egui::CursorIcon::Grab);
        if self.drag_begins(ui, &response) {
            let length = choice.length();
            let key = (length, now.to_bits(), self.shared.take.lock().map(|t| t.len()).unwrap_or(0));
            if let Some((written, path)) = &self.dragged
                && *written == key
                && path.exists()
            {
                let path = path.clone();
                self.start_drag(move || Ok(path));
                return;
            }
            // Copy what the clip needs under the take's lock; build and write it on the drag's
            // thread, without the lock.
            let source = match self.shared.take.lock() {
                Ok(take) => take.clip_source(now, length),
                Err(_) => Err("the take is unavailable".into()),
            };
            let source = match source {
                Ok(source) => source,
                Err(e) => return self.set_clip_message(Err(format!("nothing to drag: {e}"))),
            };
            let folder = clips::clips_folder(&self.params.clips_folder());
            self.dragged = None;
            let pending_key = key;
            self.start_drag(move || {
                let clip = source.clip()?;
                let saved = clips::write_clip(&clip, &folder, |path, bytes| std::fs::write(path, bytes))?;
                Ok(saved.path)
            });
            if self.drag.is_some() {
                self.dragged = Some((pending_key, PathBuf::new()));
            }
        }
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

    fn start_drag(&mut self, file: impl FnOnce() -> Result<PathBuf, String> + Send + 'static) {
        let Some(window) = &self.window else {
            return self.set_clip_message(Err("cannot drag: the editor has no window".into()));
        };
        match drag::start_drag(window, file) {
            Ok(d) => self.drag = Some(d),
            Err(e) => {
                drag::log(|| format!("end Failed({e:?}) before the drag"));
                self.set_clip_message(Err(format!("cannot drag: {e}")));
            }
        }
    }

    /// What the drag in progress reports: the file written (remembered in the list), the end.
    fn poll_drag(&mut self) {
        while let Some(event) = self.drag.as_ref().and_then(|d| d.poll()) {
            match event {
                DragEvent::Written(path) => {
                    self.params.remember_clip(&path);
                    self.clip_files_checked = None;
                    if let Some((_, written)) = self.dragged.as_mut()
                        && written.as_os_str().is_empty()
                    {
                        *written = path.clone();
                    }
                    let name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                    self.set_clip_message(Ok(format!("dragging {name}")));
                }
                DragEvent::Ended(end) => {
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
            }
        }
    }

    /// The remembered clips with whether each file exists (looked at once a second).
    fn refresh_clip_files(&mut self) {
        let paths = self.params.clips();
        let stale = self.clip_files_checked.is_none_or(|t| t.elapsed() >= CLIP_CHECK_INTERVAL);
        if stale || paths.len() != self.clip_files.len() || paths.iter().zip(&self.clip_files).any(|(a, (b, _))| a != b) {
            self.clip_files = paths.into_iter().map(|p| (p.clone(), std::path::Path::new(&p).exists())).collect();
            self.clip_files_checked = Some(std::time::Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        app.refresh_clip_files();
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
