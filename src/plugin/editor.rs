//! The plugin's window (egui): every parameter, a live piano roll, the model and its card, the
//! engine's status in words, and clips.

use crate::codec::Pitch;
use crate::plugin::clips::{self, ClipLength, SavedClip};
use crate::plugin::events::pair_played;
use crate::plugin::params::{Mode, PianoforteParams, note_name};
use crate::plugin::shared::Shared;
use crate::plugin::worker::Command;
use egui::{Align2, Color32, FontId, Pos2, Rect, RichText, Sense, Stroke, StrokeKind, Vec2};
use nice_plug::context::gui::GuiContext;
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
/// Clip lengths offered (0 = the whole take).
const CLIP_LENGTHS: [u32; 6] = [15, 30, 60, 120, 300, 0];

pub struct EditorApp {
    params: Arc<PianoforteParams>,
    shared: Arc<Shared>,
    gui: Option<GuiContext>,
    model_path: String,
    clips_folder: String,
    /// Where the plugin binary lies (ONNX Runtime is looked for there).
    plugin_folder: Option<PathBuf>,
}

impl EditorApp {
    pub fn new(params: Arc<PianoforteParams>, shared: Arc<Shared>) -> Self {
        let model_path = params.model_path();
        let clips_folder = params.clips_folder();
        let plugin_folder = crate::plugin::locate::own_folder();
        EditorApp { params, shared, gui: None, model_path, clips_folder, plugin_folder }
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

fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(6.0);
    ui.label(RichText::new(title).strong().size(15.0).color(Color32::from_rgb(230, 200, 140)));
}

impl NiceEguiApp for EditorApp {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        nice_gui_ctx: GuiContext,
        _frame: &mut Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        egui_ctx.set_visuals(egui::Visuals::dark());
        self.gui = Some(nice_gui_ctx);
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut Frame) {
        let Some(gui) = self.gui.clone() else { return };
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

        egui::Panel::left("controls").exact_size(300.0).show(ui, |ui| {
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
            egui::Grid::new("params").num_columns(2).spacing([8.0, 8.0]).show(ui, |ui| {
                let row = |ui: &mut egui::Ui, label: &str, add: &mut dyn FnMut(&mut egui::Ui)| {
                    ui.label(label);
                    add(ui);
                    ui.end_row();
                };
                row(ui, "Temperature", &mut |ui| {
                    ui.add(ParamSlider::for_param(&self.params.temperature, &setter).with_width(150.0));
                });
                row(ui, "Density", &mut |ui| {
                    ui.add(ParamSlider::for_param(&self.params.density, &setter).with_width(150.0));
                });
                row(ui, "Seed", &mut |ui| {
                    ui.add(ParamSlider::for_param(&self.params.seed, &setter).with_width(150.0));
                });
                row(ui, "Velocity min", &mut |ui| {
                    ui.add(ParamSlider::for_param(&self.params.velocity_min, &setter).with_width(150.0));
                });
                row(ui, "Velocity max", &mut |ui| {
                    ui.add(ParamSlider::for_param(&self.params.velocity_max, &setter).with_width(150.0));
                });
                row(ui, "Lowest key", &mut |ui| {
                    ui.add(ParamSlider::for_param(&self.params.key_low, &setter).with_width(150.0));
                });
                row(ui, "Highest key", &mut |ui| {
                    ui.add(ParamSlider::for_param(&self.params.key_high, &setter).with_width(150.0));
                });
            });
            ui.label(
                RichText::new("Temperature: lower is safer, higher more adventurous. Density: notes per second, or Auto. A new Seed starts a new performance.")
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
                        self.shared.update_status(|s| {
                            s.model_error = Some("the engine is not running yet (start the host's audio)".into())
                        });
                    }
                }
            });
            if ui.button("Use the built-in model").clicked() {
                self.model_path.clear();
                self.shared.send(Command::LoadModel(None));
            }
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
                    if let Some(e) = &status.model_error {
                        let keeps = if status.model.is_some() { " (the model above keeps playing)" } else { "" };
                        line(ui, false, format!("Model not loaded: {e}{keeps}"));
                    }
                    if let Some(e) = &status.engine_error {
                        line(ui, false, e.clone());
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

        ui.ctx().request_repaint_after(Duration::from_millis(33));
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
        let seconds = self.params.clip_seconds();
        ui.horizontal(|ui| {
            let label = |s: u32| {
                if s == 0 { "the whole take".to_string() } else { format!("the last {s} s") }
            };
            let mut chosen = seconds;
            egui::ComboBox::from_id_salt("clip-length").selected_text(label(seconds)).show_ui(ui, |ui| {
                for s in CLIP_LENGTHS {
                    ui.selectable_value(&mut chosen, s, label(s));
                }
            });
            if chosen != seconds
                && let Ok(mut stored) = self.params.clip_seconds.lock()
            {
                *stored = chosen;
            }
            if ui.add(egui::Button::new(RichText::new("Save clip").strong()).min_size(Vec2::new(90.0, 24.0))).clicked() {
                let length = if chosen == 0 { ClipLength::WholeTake } else { ClipLength::LastSeconds(chosen as f64) };
                let folder = clips::clips_folder(&self.params.clips_folder());
                let result = match self.shared.take.lock() {
                    Ok(take) => clips::save_clip(&take, now, length, &folder),
                    Err(_) => Err("the take is unavailable".into()),
                };
                let message = match result {
                    Ok(clip) => {
                        let text = format!("saved {} ({} notes)", clip.path.display(), clip.notes);
                        if let Ok(mut list) = self.shared.clips.lock() {
                            list.insert(0, clip);
                        }
                        Ok(text)
                    }
                    Err(e) => Err(e),
                };
                if let Ok(mut m) = self.shared.clip_message.lock() {
                    *m = Some(message);
                }
            }
        });
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
            }
        });
        if let Ok(message) = self.shared.clip_message.lock() {
            match &*message {
                Some(Ok(m)) => {
                    ui.label(RichText::new(m).small().color(Color32::from_rgb(120, 200, 120)));
                }
                Some(Err(e)) => {
                    ui.label(RichText::new(format!("not saved: {e}")).small().color(Color32::from_rgb(235, 110, 90)));
                }
                None => {
                    ui.label(
                        RichText::new("Drag a saved clip from your file browser into the arrangement, or record this track's MIDI.")
                            .small()
                            .weak(),
                    );
                }
            }
        }
        let list: Vec<SavedClip> = self.shared.clips.lock().map(|l| l.clone()).unwrap_or_default();
        egui::ScrollArea::vertical().max_height(150.0).show(ui, |ui| {
            for clip in &list {
                ui.horizontal(|ui| {
                    if ui.small_button("copy path").clicked() {
                        ui.ctx().copy_text(clip.path.display().to_string());
                    }
                    let name = clip.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                    ui.label(name).on_hover_text(clip.path.display().to_string());
                });
                ui.label(RichText::new(clip.path.display().to_string()).small().weak());
            }
        });
    }
}
