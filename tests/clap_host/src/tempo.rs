//! `--suite tempo` (issue 19): with Timing on Song tempo, does the performance keep the host's
//! time? Offline renders (deterministic) at steady tempos, on a tempo ramp and across a sudden
//! tempo change; every generated NOTE_ON is placed on the host's own tempo map and measured as
//! `benches/beats.py` measures `generate --bpm`: *on grid* (within 0.06 beat of 0, 1/4, 1/3, 1/2,
//! 2/3, 3/4 of a beat, or 1) and *on beat* (within 0.08 beat of a beat). For a model that hears
//! beats (model card `format_version` 3 or later) the suite asserts that the plugin delivers the
//! song's beat: on grid at least [`FOLLOWS_MARGIN`] above chance (the share of a beat that the
//! grid's windows cover, 0.647: where onsets at random phases land), reproducibly, and that Free
//! plays otherwise. Issue 19's goals for the figures are a
//! measure of the model, reported beside them (met or not; the model card and
//! docs/benchmarks.md carry them); other models have their figures printed. Also: old projects
//! (saved before Timing existed) open in Free time.

use crate::check;
use crate::host::{self, Action::*, OutKind, Plugin, Scenario, Sizes, TempoMap, TestHost, seg};
use clack_extensions::params::{ParamInfoBuffer, PluginParams};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use std::ffi::CString;
use std::path::{Path, PathBuf};

type Outcome = Result<String, String>;

const RATE: f64 = 48_000.0;
const BLOCK: u32 = 512;
/// The length of the renders at a steady tempo.
const STEADY_SECONDS: f64 = 60.0;
/// Positions within the beat that count as on the grid.
const GRID: [f64; 7] = [0.0, 1.0 / 4.0, 1.0 / 3.0, 1.0 / 2.0, 2.0 / 3.0, 3.0 / 4.0, 1.0];
const GRID_TOLERANCE: f64 = 0.06;
const BEAT_TOLERANCE: f64 = 0.08;
/// Both tolerances are inclusive, give or take this much (as in benches/beats.py).
const SLACK: f64 = 1e-3;
/// How far above chance a model that hears beats must place its onsets on the grid: the plugin
/// delivers the song's beat.
const FOLLOWS_MARGIN: f64 = 0.04;
/// Issue 19's goals, reported: on grid and on beat at steady tempos; on grid in every 4-bar
/// window of a ramp and after a tempo change.
const ON_GRID_GOAL: f64 = 0.80;
const ON_BEAT_GOAL: f64 = 0.33;
const WINDOW_GOAL: f64 = 0.75;
/// The model card's format from which models hear beats.
const BEATS_FORMAT: u32 = 3;

/// One offline render: its generated NOTE_ONs as (host sample, key, velocity) and its tempo map.
struct Take {
    notes: Vec<(u64, u8, u8)>,
    map: TempoMap,
    wall_seconds: f64,
}

impl Take {
    /// The song position (quarter notes) of every onset; the song position moves with the
    /// samples from 0 at the first block (the transport plays from there, no jumps).
    fn quarters(&self) -> Vec<f64> {
        self.notes.iter().map(|&(sample, _, _)| self.map.quarters_at(sample as f64 / RATE)).collect()
    }

    /// Quarter notes per beat: the denominator's note, three of them in compound meters (6/8...).
    fn beat_quarters(&self) -> f64 {
        let (n, d) = (self.map.numerator, self.map.denominator);
        let compound = d == 8 && n > 3 && n % 3 == 0;
        4.0 / d as f64 * if compound { 3.0 } else { 1.0 }
    }

    /// On grid and on beat over the whole render.
    fn figures(&self) -> Figures {
        Figures::of(&self.beats_in_bars(0.0, f64::INFINITY))
    }

    /// Onset positions in beats, of the onsets in bars `from..to` (counted from 0).
    fn beats_in_bars(&self, from: f64, to: f64) -> Vec<f64> {
        let bar = self.map.bar_quarters();
        let in_bars = |q: &f64| (from..to).contains(&(q / bar).floor());
        self.quarters().into_iter().filter(in_bars).map(|q| q / self.beat_quarters()).collect()
    }
}

/// On grid and on beat of a set of onsets (positions in beats).
struct Figures {
    onsets: usize,
    on_grid: f64,
    on_beat: f64,
}

impl Figures {
    fn of(beats: &[f64]) -> Figures {
        let grid = beats.iter().filter(|&&b| GRID.iter().any(|g| (b - b.floor() - g).abs() <= GRID_TOLERANCE + SLACK)).count();
        let beat = beats.iter().filter(|&&b| (b - b.round()).abs() <= BEAT_TOLERANCE + SLACK).count();
        let share = |n: usize| if beats.is_empty() { f64::NAN } else { n as f64 / beats.len() as f64 };
        Figures { onsets: beats.len(), on_grid: share(grid), on_beat: share(beat) }
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} onsets, on grid {:.3}, on beat {:.3}", self.onsets, self.on_grid, self.on_beat)
    }
}

/// Whether following is asserted (the model hears beats), and against what.
#[derive(Clone, Copy)]
struct Judge {
    format: Option<u32>,
    /// Song tempo and Free play different performances (false: the plugin runs no model that
    /// hears beats, whatever the file's card says: it may have refused the file).
    beats_heard: bool,
    /// On grid by chance: the share of phases within the grid's windows.
    chance: f64,
}

impl Judge {
    fn asserted(self) -> bool {
        self.format.is_some_and(|f| f >= BEATS_FORMAT)
    }

    /// `Ok(text)` when the onsets follow the beat (`on_grid` clear of chance) or following is not
    /// asserted (said so), `Err` otherwise; `goal_met` is reported either way.
    fn judge(self, text: String, on_grid: f64, goal_met: bool) -> Outcome {
        let goal = if goal_met { "issue 19's goal met" } else { "issue 19's goal not met" };
        let follows = on_grid >= self.chance + FOLLOWS_MARGIN;
        let bar = format!("chance {:.3} + {FOLLOWS_MARGIN}", self.chance);
        match (self.asserted(), self.format) {
            (true, _) if follows => Ok(format!("{text}\n  follows the beat (on grid above {bar}); {goal}")),
            (true, _) if self.beats_heard => Err(format!("{text}: on grid not above {bar}; {goal}")),
            (true, _) => Err(format!(
                "{text}: on grid not above {bar}; Song tempo and Free play the same: the plugin runs no model that hears \
                 beats (did it refuse the file? see its log)"
            )),
            (false, Some(f)) => Ok(format!("{text}\n  format-{f} model: figures reported, nothing asserted")),
            (false, None) => Ok(format!("{text}\n  the model card could not be read: figures reported, nothing asserted")),
        }
    }
}

/// [`scenario`] at a steady `bpm` in 4/4 for [`STEADY_SECONDS`].
fn steady_scenario(bpm: f64, timing: &'static str) -> Scenario {
    scenario(TempoMap::constant(bpm, 4, 4), STEADY_SECONDS, timing)
}

/// An offline render of Play on the transport with `map` for `seconds`, Timing as `timing`.
fn scenario(map: TempoMap, seconds: f64, timing: &'static str) -> Scenario {
    let segments = vec![seg(seconds, vec![Transport(true), Param("Timing", timing)]), seg(0.5, vec![Transport(false)])];
    let mut s = Scenario::new("tempo", RATE, Sizes::Fixed(BLOCK), segments);
    (s.offline, s.lockstep, s.speed, s.tempo) = (true, false, 0.0, map);
    s
}

/// Renders a scenario; the host's usual checks (every note at its traced sample, none stuck)
/// must pass too.
fn render(plugin: &Plugin, s: &Scenario, trace_dir: &Path, model: Option<&Path>) -> Result<Take, String> {
    let run = host::run(plugin, s, trace_dir, model)?;
    let report = check::check(&run, true, false, s.input_channel as u8);
    if let Some(e) = report.errors.first() {
        return Err(format!("the render fails the host's checks: {e}"));
    }
    let notes = run
        .events
        .iter()
        .filter(|e| e.channel == 0)
        .filter_map(|e| match e.kind {
            OutKind::On { key, velocity } => Some((e.host_sample, key, velocity)),
            _ => None,
        })
        .collect();
    Ok(Take { notes, map: s.tempo.clone(), wall_seconds: run.wall_seconds })
}

/// Every check of the suite, by name; `model` is the model file the plugin is given (None: its
/// built-in model).
pub fn checks(plugin: &Plugin, trace_dir: &Path, model: Option<&Path>) -> Vec<(String, Outcome)> {
    let file = model.map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/pianoforte-gru.onnx"), Path::to_path_buf);
    let format = model_format(&file);
    let card =
        format.clone().map(|f| format!("{}: format {f} ({})", file.display(), if f >= BEATS_FORMAT { "hears beats" } else { "free time" }));
    let run = |map: TempoMap, seconds: f64, timing: &'static str| render(plugin, &scenario(map, seconds, timing), trace_dir, model);
    let steady_at = |bpm: f64, timing: &'static str| render(plugin, &steady_scenario(bpm, timing), trace_dir, model);
    let (slow, fast, again, free) =
        (steady_at(84.0, "Song tempo"), steady_at(126.0, "Song tempo"), steady_at(126.0, "Song tempo"), steady_at(126.0, "Free"));
    let ramp = run(TempoMap::ramp(100.0, 140.0, 16.0, 4, 4), 32.0, "Song tempo");
    let change = run(TempoMap::change_at_bar(126.0, 84.0, 9, 4, 4), change_seconds(), "Song tempo");
    let beats_heard = match (&fast, &free) {
        (Ok(a), Ok(b)) => difference(a, b).is_some(),
        _ => true,
    };
    let judge = Judge { format: format.ok(), beats_heard, chance: chance_on_grid() };
    vec![
        ("the model the plugin is given (its card's format_version)".to_string(), card),
        (format!("84 BPM, 4/4, {STEADY_SECONDS} s: on grid, on beat"), steady(&slow, judge)),
        (format!("126 BPM, 4/4, {STEADY_SECONDS} s: on grid, on beat"), steady(&fast, judge)),
        ("a ramp from 100 to 140 BPM over 16 bars of 4/4: on grid in each 4 bars".into(), windows(&ramp, judge)),
        ("126 BPM, then 84 BPM from bar 9: the onsets after the change follow the new beat".into(), changed(&change, judge)),
        ("126 BPM rendered twice: the same events".into(), same(&fast, &again)),
        ("126 BPM with Timing = Free: another performance (the model hears the beats)".into(), hears(&fast, &free, judge)),
    ]
}

/// Seeds `--suite tempo-seeds` renders at each steady tempo.
const SEEDS: [&str; 8] = ["1", "2", "3", "4", "5", "6", "7", "8"];

/// The steady tempos of [`checks`] at seeds 1-8, reported (nothing asserted but the renders): how
/// far one performance's figures are from the plugin's usual ones.
pub fn across_seeds(plugin: &Plugin, trace_dir: &Path, model: Option<&Path>) -> Vec<(String, Outcome)> {
    let at = |bpm: f64| -> Outcome {
        let mut figures = Vec::new();
        for seed in SEEDS {
            let mut s = steady_scenario(bpm, "Song tempo");
            s.segments[0].actions.push(Param("Seed", seed));
            let take = render(plugin, &s, trace_dir, model)?;
            figures.push(take.figures());
        }
        let summary = |name: &str, of: fn(&Figures) -> f64| {
            let values: Vec<f64> = figures.iter().map(of).collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
            let each: Vec<String> = values.iter().map(|v| format!("{v:.3}")).collect();
            format!("{name} {mean:.3} ± {sd:.3} ({})", each.join(", "))
        };
        Ok(format!("seeds 1-{}: {}; {}", SEEDS.len(), summary("on grid", |f| f.on_grid), summary("on beat", |f| f.on_beat)))
    };
    [84.0, 126.0].into_iter().map(|bpm| (format!("{bpm} BPM, 4/4, {STEADY_SECONDS} s, Song tempo, eight seeds"), at(bpm))).collect()
}

/// The share of a beat's phases that count as on the grid: where onsets at random phases land.
fn chance_on_grid() -> f64 {
    let phases: Vec<f64> = (0..100_000).map(|k| k as f64 / 100_000.0).collect();
    Figures::of(&phases).on_grid
}

/// Song seconds of the change scenario: 8 bars at 126 BPM, then 8 at 84.
fn change_seconds() -> f64 {
    8.0 * 4.0 * 60.0 / 126.0 + 8.0 * 4.0 * 60.0 / 84.0
}

fn rendered_in(take: &Take) -> String {
    format!("rendered in {:.1} s", take.wall_seconds)
}

/// A steady tempo: on grid and on beat over the whole render.
fn steady(take: &Result<Take, String>, judge: Judge) -> Outcome {
    let take = take.as_ref().map_err(Clone::clone)?;
    let figures = take.figures();
    let met = figures.on_grid >= ON_GRID_GOAL && figures.on_beat >= ON_BEAT_GOAL;
    let text = format!("{figures} (goals {ON_GRID_GOAL}, {ON_BEAT_GOAL}); {}", rendered_in(take));
    judge.judge(text, figures.on_grid, met)
}

/// The ramp: on grid in each 4-bar window of its 16 bars.
fn windows(take: &Result<Take, String>, judge: Judge) -> Outcome {
    let take = take.as_ref().map_err(Clone::clone)?;
    let figures: Vec<Figures> = (0..4).map(|w| Figures::of(&take.beats_in_bars(4.0 * w as f64, 4.0 * (w + 1) as f64))).collect();
    let lines: Vec<String> = figures.iter().enumerate().map(|(w, f)| format!("bars {}-{}: {f}", 4 * w + 1, 4 * w + 4)).collect();
    let met = figures.iter().all(|f| f.on_grid >= WINDOW_GOAL);
    let whole = Figures::of(&take.beats_in_bars(0.0, 16.0));
    let text = format!("{}; all 16 bars: {whole} (goal on grid {WINDOW_GOAL} in each 4); {}", lines.join("; "), rendered_in(take));
    judge.judge(text, whole.on_grid, met)
}

/// The tempo change at bar 9: on grid before it, and after it against the new tempo.
fn changed(take: &Result<Take, String>, judge: Judge) -> Outcome {
    let take = take.as_ref().map_err(Clone::clone)?;
    let (before, after) = (Figures::of(&take.beats_in_bars(0.0, 8.0)), Figures::of(&take.beats_in_bars(8.0, 16.0)));
    let first = Figures::of(&take.beats_in_bars(8.0, 9.0));
    let text = format!(
        "bars 1-8 (126 BPM): {before}; bars 9-16 (84 BPM): {after} (goal on grid {WINDOW_GOAL}); bar 9 alone: {first}; {}",
        rendered_in(take)
    );
    judge.judge(text, after.on_grid, after.on_grid >= WINDOW_GOAL)
}

/// Where two takes' NOTE_ONs first differ, in words.
fn difference(a: &Take, b: &Take) -> Option<String> {
    match a.notes.iter().zip(&b.notes).position(|(x, y)| x != y) {
        Some(i) => Some(format!("NOTE_ON {i}: (sample, key, velocity) {:?} vs {:?}", a.notes[i], b.notes[i])),
        None if a.notes.len() != b.notes.len() => Some(format!("{} vs {} NOTE_ONs", a.notes.len(), b.notes.len())),
        None => None,
    }
}

/// Reproducible: the same render twice, the same NOTE_ONs at the same samples.
fn same(a: &Result<Take, String>, b: &Result<Take, String>) -> Outcome {
    let (a, b) = (a.as_ref().map_err(Clone::clone)?, b.as_ref().map_err(Clone::clone)?);
    if a.notes.len() < 20 {
        return Err(format!("only {} NOTE_ONs: nothing to compare", a.notes.len()));
    }
    match difference(a, b) {
        Some(d) => Err(format!("the renders differ: {d}")),
        None => Ok(format!("{} NOTE_ONs identical", a.notes.len())),
    }
}

/// Timing = Free plays another performance than Song tempo when the model hears beats (the
/// figures of the free take against the song's grid are the chance level).
fn hears(song: &Result<Take, String>, free: &Result<Take, String>, judge: Judge) -> Outcome {
    let (song, free) = (song.as_ref().map_err(Clone::clone)?, free.as_ref().map_err(Clone::clone)?);
    let figures = free.figures();
    let differs = difference(song, free);
    let text = match &differs {
        Some(d) => format!("the performances differ ({d}); Free against the 126 BPM grid: {figures}"),
        None => format!("the performances are identical; Free against the 126 BPM grid: {figures}"),
    };
    match (judge.asserted(), differs) {
        (true, None) => Err(format!("{text}: a model that hears beats must play otherwise in free time")),
        _ => Ok(text),
    }
}

/// The `format_version` of an ONNX model's card (the JSON in `metadata_props["pianoforte"]`).
pub fn model_format(path: &Path) -> Result<u32, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let card = metadata(&bytes, "pianoforte").ok_or_else(|| format!("{}: no pianoforte model card", path.display()))?;
    json_integer(&card, "format_version").ok_or_else(|| format!("{}: the card has no format_version", path.display()))
}

/// A protobuf varint at `at` (moved past it).
fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The length-delimited fields of a protobuf message: (field number, payload).
fn delimited_fields(bytes: &[u8]) -> Vec<(u64, &[u8])> {
    let (mut at, mut fields) = (0, Vec::new());
    while let Some(tag) = varint(bytes, &mut at) {
        let length = match tag & 7 {
            0 => varint(bytes, &mut at).map(|_| 0),
            1 => Some(8),
            2 => varint(bytes, &mut at).map(|n| n as usize),
            5 => Some(4),
            _ => None,
        };
        let Some(payload) = length.and_then(|n| bytes.get(at..at.checked_add(n)?)) else { break };
        at += payload.len();
        if tag & 7 == 2 {
            fields.push((tag >> 3, payload));
        }
    }
    fields
}

/// `metadata_props[key]` of an ONNX ModelProto (field 14: StringStringEntryProto, key 1, value 2).
fn metadata(model: &[u8], key: &str) -> Option<String> {
    delimited_fields(model).into_iter().filter(|(field, _)| *field == 14).find_map(|(_, entry)| {
        let fields = delimited_fields(entry);
        let get = |n: u64| fields.iter().find(|(f, _)| *f == n).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        (get(1)? == key).then(|| get(2)).flatten()
    })
}

/// The integer value of `"name": 3` in a JSON text (the first such key).
fn json_integer(json: &str, name: &str) -> Option<u32> {
    let rest = &json[json.find(&format!("\"{name}\""))? + name.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())].parse().ok()
}

// Old projects: a state saved by the release before Timing existed has neither "timing" nor
// "tempo" among its parameters; it opens in Free time (the plugin's filter_state), as it played.

/// The state checks of Timing, by name.
pub fn old_projects(plugin: &Plugin) -> Vec<(String, Outcome)> {
    vec![
        ("a project saved before Timing existed (no timing, no tempo) opens in Free time".into(), previous_release(plugin)),
        ("a project saved before Tightness existed opens with it Off".into(), release_before_tightness(plugin)),
        ("a project saved with Timing = Song tempo (Tempo 137) opens so, even over Free".into(), saved_now(plugin)),
        (
            "a project saved before Perform my part existed opens improvising, even over Perform my part".into(),
            release_before_perform(plugin),
        ),
    ]
}

/// A state as saved: whether it has nice-plug's length header, and its JSON.
struct Saved {
    header: bool,
    json: String,
}

fn save(instance: &mut PluginInstance<TestHost>) -> Result<Saved, String> {
    let handle = instance.plugin_handle();
    let state: PluginState = handle.get_extension().ok_or("no state extension")?;
    let mut bytes = Vec::new();
    state.save(&handle, &mut bytes).map_err(|e| format!("save: {e:?}"))?;
    let header = bytes.get(..8).is_some_and(|h| u64::from_le_bytes(h.try_into().unwrap()) as usize == bytes.len() - 8);
    let json = String::from_utf8_lossy(if header { &bytes[8..] } else { &bytes[..] }).into_owned();
    Ok(Saved { header, json })
}

fn load(instance: &mut PluginInstance<TestHost>, saved: &Saved) -> Result<(), String> {
    let handle = instance.plugin_handle();
    let state: PluginState = handle.get_extension().ok_or("no state extension")?;
    let mut bytes = if saved.header { (saved.json.len() as u64).to_le_bytes().to_vec() } else { Vec::new() };
    bytes.extend_from_slice(saved.json.as_bytes());
    state.load(&handle, &mut bytes.as_slice()).map_err(|e| format!("load: {e:?}"))
}

/// A parameter's id and the CLAP value of `text` for it.
fn param_value(instance: &mut PluginInstance<TestHost>, name: &str, text: &str) -> Result<(ClapId, f64), String> {
    let handle = instance.plugin_handle();
    let params: PluginParams = handle.get_extension().ok_or("no params extension")?;
    let mut buffer = ParamInfoBuffer::new();
    let id = (0..params.count(&handle))
        .filter_map(|i| params.get_info(&handle, i, &mut buffer).map(|info| (info.id, info.name == name.as_bytes())))
        .find_map(|(id, named)| named.then_some(id))
        .ok_or_else(|| format!("no parameter {name}"))?;
    let value = params.text_to_value(&handle, id, &CString::new(text).unwrap()).ok_or_else(|| format!("{name}: cannot read {text}"))?;
    Ok((id, value))
}

/// Sets parameters (name, text) on an inactive instance, as a host's flush does.
pub fn set_params(instance: &mut PluginInstance<TestHost>, settings: &[(&str, &str)]) -> Result<(), String> {
    let mut events = EventBuffer::new();
    for (name, text) in settings {
        let (id, value) = param_value(instance, name, text)?;
        events.push(&ParamValueEvent::new(0, id, Pckn::match_all(), value));
    }
    let params: PluginParams = instance.plugin_handle().get_extension().ok_or("no params extension")?;
    let mut inactive = instance.inactive_plugin_handle().ok_or("the instance is active")?;
    params.flush(&mut inactive, &events.as_input(), &mut OutputEvents::void());
    Ok(())
}

/// Whether parameter `name` is at `text` now; Err says what it is instead.
fn expect_param(instance: &mut PluginInstance<TestHost>, name: &str, text: &str) -> Result<(), String> {
    let (id, wanted) = param_value(instance, name, text)?;
    let handle = instance.plugin_handle();
    let params: PluginParams = handle.get_extension().ok_or("no params extension")?;
    let got = params.get_value(&handle, id).ok_or("get_value")?;
    if (got - wanted).abs() > 1e-6 {
        return Err(format!("{name} is {got} after the load, not {text} ({wanted})"));
    }
    Ok(())
}

/// The state's JSON without the parameter `key` (`"key":{...}` and one comma beside it).
fn without_param(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":{{"))?;
    let end = start + json[start..].find('}')? + 1;
    let (start, end) = match (json[end..].starts_with(','), json[..start].ends_with(',')) {
        (true, _) => (start, end + 1),
        (false, true) => (start - 1, end),
        (false, false) => (start, end),
    };
    Some(format!("{}{}", &json[..start], &json[end..]))
}

/// The state of a fresh instance (Timing at its default, Song tempo) as the previous release
/// saved it: loaded into another fresh one, Timing is Free and Tempo at its default.
fn previous_release(plugin: &Plugin) -> Outcome {
    let mut a = plugin.instance()?;
    set_params(&mut a, &[("Timing", "Song tempo")])?;
    let saved = save(&mut a)?;
    let old = without_param(&saved.json, "timing")
        .and_then(|j| without_param(&j, "tempo"))
        .and_then(|j| without_param(&j, "motifs"))
        .and_then(|j| without_param(&j, "tightness"));
    let old = old.ok_or_else(|| format!("no timing, tempo, motifs or tightness among the saved parameters: {}", saved.json))?;
    let mut b = plugin.instance()?;
    expect_param(&mut b, "Timing", "Song tempo").map_err(|e| format!("a fresh instance: {e}"))?;
    expect_param(&mut b, "Motifs", "50 %").map_err(|e| format!("a fresh instance: {e}"))?;
    load(&mut b, &Saved { json: old, ..saved })?;
    expect_param(&mut b, "Timing", "Free")?;
    expect_param(&mut b, "Tempo", "100")?;
    expect_param(&mut b, "Motifs", "Off")?;
    expect_param(&mut b, "Tightness", "Off")?;
    Ok("Timing restored Free, Tempo at its default (100 BPM), Motifs and Tightness Off".into())
}

/// A state of the release before Tightness (Song tempo, Motifs 50 %, no tightness): it opens with
/// those settings and Tightness Off, so it plays as it did; a fresh instance starts at 75 %.
fn release_before_tightness(plugin: &Plugin) -> Outcome {
    let mut a = plugin.instance()?;
    set_params(&mut a, &[("Timing", "Song tempo")])?;
    let saved = save(&mut a)?;
    let old = without_param(&saved.json, "tightness").ok_or_else(|| format!("no tightness among the saved parameters: {}", saved.json))?;
    let mut b = plugin.instance()?;
    expect_param(&mut b, "Tightness", "75 %").map_err(|e| format!("a fresh instance: {e}"))?;
    load(&mut b, &Saved { json: old, ..saved })?;
    expect_param(&mut b, "Timing", "Song tempo")?;
    expect_param(&mut b, "Motifs", "50 %")?;
    expect_param(&mut b, "Tightness", "Off")?;
    Ok("Song tempo and Motifs 50 % kept, Tightness restored Off".into())
}

/// A state of the release before Perform my part (no `perform`), loaded into an instance that
/// performs a part: it improvises, as that release did.
fn release_before_perform(plugin: &Plugin) -> Outcome {
    let mut a = plugin.instance()?;
    set_params(&mut a, &[("Tightness", "40 %")])?;
    let saved = save(&mut a)?;
    let old = without_param(&saved.json, "perform").ok_or_else(|| format!("no perform among the saved parameters: {}", saved.json))?;
    let mut b = plugin.instance()?;
    set_params(&mut b, &[("Perform my part", "On")])?;
    expect_param(&mut b, "Perform my part", "On")?;
    load(&mut b, &Saved { json: old, ..saved })?;
    expect_param(&mut b, "Tightness", "40 %")?;
    expect_param(&mut b, "Perform my part", "Off")?;
    Ok("Tightness 40 % kept, Perform my part restored Off".into())
}

/// A state saved now with Song tempo and Tempo 137, loaded into an instance that opened an old
/// project (so in Free time): Song tempo and 137 BPM.
fn saved_now(plugin: &Plugin) -> Outcome {
    let mut a = plugin.instance()?;
    set_params(&mut a, &[("Timing", "Song tempo"), ("Tempo", "137")])?;
    let saved = save(&mut a)?;
    let mut b = plugin.instance()?;
    let old = without_param(&saved.json, "timing").ok_or("no timing in the saved state")?;
    load(&mut b, &Saved { json: old, header: saved.header })?;
    expect_param(&mut b, "Timing", "Free")?;
    load(&mut b, &saved)?;
    expect_param(&mut b, "Timing", "Song tempo")?;
    expect_param(&mut b, "Tempo", "137")?;
    Ok("Timing restored Song tempo (over Free), Tempo 137 BPM".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chance_is_the_share_of_the_beat_the_grids_windows_cover() {
        // Windows of +-w around 0, 1/4, 1/3, 1/2, 2/3, 3/4 and 1; 1/4 and 1/3 (2/3 and 3/4) overlap.
        let w = GRID_TOLERANCE + SLACK;
        let covered = w + (1.0 / 3.0 + w - (0.25 - w)) + 2.0 * w + (0.75 + w - (2.0 / 3.0 - w)) + w;
        assert!((chance_on_grid() - covered).abs() < 1e-4, "{} vs {covered}", chance_on_grid());
    }

    #[test]
    fn the_default_transport_is_the_steady_120_bpm_one_it_always_was() {
        for pos in [0i64, 1, 511, 48_000, 1_234_567, 86_400 * 48_000] {
            let event = host::transport_event(true, pos, 48_000.0, false);
            let seconds = pos as f64 / 48_000.0;
            let beats = seconds * 120.0 / 60.0;
            assert_eq!(event.song_pos_beats, clack_host::utils::BeatTime::from_float(beats));
            assert_eq!(event.bar_start, clack_host::utils::BeatTime::from_float((beats / 4.0).floor() * 4.0));
            assert_eq!((event.tempo, event.tempo_inc, event.bar_number), (120.0, 0.0, (beats / 4.0).floor() as i32));
            assert_eq!((event.time_signature_numerator, event.time_signature_denominator), (4, 4));
        }
    }

    #[test]
    fn a_ramp_is_the_exact_integral_of_its_tempo() {
        let map = TempoMap::ramp(100.0, 140.0, 16.0, 4, 4);
        // 64 quarter notes at a mean of 120 BPM: 32 s.
        assert!((map.points[1].0 - 32.0).abs() < 1e-12);
        assert!((map.quarters_at(32.0) - 64.0).abs() < 1e-9);
        assert_eq!(map.tempo_at(16.0), (120.0, 40.0 / 32.0));
        // Halfway in time: 16 s at a mean of 110 BPM.
        assert!((map.quarters_at(16.0) - 16.0 * 110.0 / 60.0).abs() < 1e-9);
        // Steady 140 afterwards.
        assert!((map.quarters_at(33.0) - 64.0 - 140.0 / 60.0).abs() < 1e-9);
        assert_eq!(map.tempo_at(40.0), (140.0, 0.0));
        let event = host::transport_at(&map, true, 8 * 48_000, 48_000.0, false);
        assert_eq!((event.tempo, event.tempo_inc), (110.0, 40.0 / 32.0 / 48_000.0));
        let beats = map.quarters_at(8.0);
        assert_eq!(event.bar_number, (beats / 4.0).floor() as i32);
        assert_eq!(event.bar_start, clack_host::utils::BeatTime::from_float((beats / 4.0).floor() * 4.0));
    }

    #[test]
    fn a_tempo_change_begins_on_its_bar() {
        let map = TempoMap::change_at_bar(126.0, 84.0, 9, 4, 4);
        let at = 32.0 * 60.0 / 126.0;
        assert!((map.quarters_at(at) - 32.0).abs() < 1e-9);
        assert_eq!(map.tempo_at(at - 1e-6).0, 126.0);
        assert_eq!(map.tempo_at(at), (84.0, 0.0));
        assert!((map.quarters_at(at + 60.0 / 84.0) - 33.0).abs() < 1e-9);
        let three_four = TempoMap::constant(90.0, 3, 4);
        let event = host::transport_at(&three_four, true, 48_000 * 4, 48_000.0, false);
        // 4 s at 90 BPM: 6 quarters, bar 2 (from 0) begins at 6.
        assert_eq!((event.bar_number, event.time_signature_numerator), (2, 3));
    }

    #[test]
    fn onsets_are_measured_as_benches_beats_py_measures_them() {
        let figures = Figures::of(&[0.0, 1.06, 2.25, 3.333, 4.5, 5.92, 6.4, 7.12]);
        assert_eq!(figures.onsets, 8);
        // On grid (within 0.06 beat): all but 5.92 (0.08 from 1), 6.4 (0.07 from 1/3) and 7.12.
        assert_eq!(figures.on_grid, 5.0 / 8.0);
        // On beat (within 0.08 beat): 0.0, 1.06, 5.92.
        assert_eq!(figures.on_beat, 3.0 / 8.0);
        let map = TempoMap::constant(126.0, 6, 8);
        let take = Take { notes: vec![(0, 60, 90), (48_000, 60, 90)], map, wall_seconds: 0.0 };
        // In 6/8 a beat is a dotted quarter: 1 s at 126 BPM is 2.1 quarters, 1.4 beats.
        assert_eq!(take.beats_in_bars(0.0, 1.0), vec![0.0, 2.1 / 1.5]);
    }

    #[test]
    fn the_model_card_format_is_read_from_the_onnx_file() {
        let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/pianoforte-gru.onnx");
        assert_eq!(model_format(&shipped), Ok(3), "the shipped model hears beats (issue 19)");
        assert_eq!(json_integer(r#"{"a": 1, "format_version" : 3,"b":2}"#, "format_version"), Some(3));
        assert!(model_format(Path::new("/nonexistent.onnx")).is_err());
    }

    #[test]
    fn an_old_state_has_no_timing_and_no_tempo() {
        let json = r#"{"params":{"tempo":{"f32":100.0},"timing":{"string":"song"},"tonality":{"i32":0}},"fields":{}}"#;
        let old = without_param(json, "timing").and_then(|j| without_param(&j, "tempo"));
        assert_eq!(old.as_deref(), Some(r#"{"params":{"tonality":{"i32":0}},"fields":{}}"#));
        let last = r#"{"params":{"a":{"i32":0},"timing":{"string":"song"}}}"#;
        assert_eq!(without_param(last, "timing").as_deref(), Some(r#"{"params":{"a":{"i32":0}}}"#));
    }
}
