//! The performance engine: the GRU's state, priming, and drawing one event at a time.
//!
//! ```text
//! let model = Model::load(&ModelSource::Embedded, &LoadOptions::default())?;
//! let mut engine = Engine::new(model, Settings { seed: 7, ..Settings::default() })?;
//! engine.prime(&primer_events)?;           // one model call of T = primer length + 1 (START)
//! loop { let step = engine.step()?; ... }  // one model call of T = 1 per event
//! ```
//!
//! After warm-up (`Engine::new` runs the model twice), [`Engine::step`], [`Engine::feed`],
//! [`Engine::set_control`] and [`Engine::set_sampling`] do not allocate on the Rust side and take
//! no locks of ours: the input tensors, the two hidden-state tensors (used in turn) and the logits
//! are created once, and ONNX Runtime writes its outputs into them (`OutputSelector::preallocate`).
//! What ONNX Runtime does inside `Run` is its own business; docs/engine.md has the measurements.
//!
//! Musical guards are applied as logit masks before sampling: the grammar of the codec's streams
//! (`codec::features`: no NOTE_OFF of a silent key, no NOTE_ON of a sounding key, only a NOTE_ON
//! after a VELOCITY, no repeated velocity bin, no shift after a short shift, no redundant pedal
//! event), at most `max_polyphony` keys down, and no TIME_SHIFT that would hold a key longer than
//! `max_note_seconds` (or pass the horizon). When a key reaches its limit, its NOTE_OFF is forced
//! (and fed to the model like any event).
//!
//! Format-2 models also read the key control and the music-state features; format-3 models also
//! the beat features of the song's [`BeatClock`] (free time without one). The engine writes them
//! into preallocated tensors before every model call.

pub mod beat_clock;
pub mod control;
pub mod logits;
pub mod model;
pub mod motif;
pub mod onnxruntime_library;
pub mod runtime;
pub mod sampling;
pub mod tightness;

use crate::codec::beats::{BEAT_SIZE, write_beat_features};
use crate::codec::features::{KEY_SIZE, STATE_SIZE, write_state_features};
use crate::codec::{self, Change, Event, MAX_SHIFT_STEPS, MusicState, PITCHES, Performance, Pitch, STEPS_PER_SECOND, VOCABULARY};
pub use beat_clock::{BeatClock, Meter};
use control::{Control, DensityControl, KEY_CHOICE_ONSETS, KeyControl, best_fitting_key};
pub use model::Error;
use model::{Inputs, Model, START_TOKEN};
use motif::MotifMemory;
use ort::memory::Allocator;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session, SessionInputValue, SessionOutputs};
use ort::value::{DynValue, Tensor};
use sampling::{Pcg32, Sampling};

const VOCAB: usize = VOCABULARY.size as usize;
const NOTES: usize = PITCHES as usize;

/// Musical guards on what may be drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guards {
    /// At most this many keys down at once (NOTE_ONs are masked beyond it).
    pub max_polyphony: usize,
    /// No key is held longer than this; its NOTE_OFF is forced when it gets there.
    pub max_note_seconds: f64,
}

impl Default for Guards {
    fn default() -> Self {
        Guards { max_polyphony: 16, max_note_seconds: codec::MAX_NOTE_SECONDS }
    }
}

/// Everything that shapes the drawing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub sampling: Sampling,
    pub control: Control,
    /// The key to play in (format-2 models).
    pub key: KeyControl,
    pub guards: Guards,
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { sampling: Sampling::default(), control: Control::Off, key: KeyControl::Any, guards: Guards::default(), seed: 0 }
    }
}

/// One event from the engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub event: Event,
    /// When it happens, in seconds from the start of the primer (the sum of the shifts before it).
    pub time: f64,
    /// Forced by a guard (a held key's NOTE_OFF) or fed from outside, not drawn.
    pub forced: bool,
}

/// The GRU with its state and everything needed to draw events without allocating.
pub struct Engine {
    model: Model,
    density: DensityControl,
    settings: Settings,
    rng: Pcg32,
    /// The inputs of a T = 1 step.
    step_in: StepInputs,
    /// The song's beats, or free time (`None`); read by format-3 models.
    beat_clock: Option<BeatClock>,
    /// The key vectors of the card's named keys.
    key_table: Vec<[f32; KEY_SIZE]>,
    /// Note onsets since the last prime (primer included), by pitch class: what `KeyControl::Any`
    /// chooses its key from.
    heard: [u32; KEY_SIZE],
    /// The key `KeyControl::Any` settled on, once it has.
    chosen_key: Option<u8>,
    /// Two hidden-state tensors used in turn: `runs[i]` reads `hidden[i]` and writes `hidden[1 - i]`
    /// and `logits_out[i]`. Each handle shares its tensor with the run options that write it.
    hidden: [DynValue; 2],
    logits_out: [DynValue; 2],
    runs: [RunOptions<HasSelectedOutputs>; 2],
    /// Which hidden tensor holds the state.
    current: usize,
    /// The logits for the next event (raw), and scratch space for masking and top-p.
    logits: Vec<f32>,
    work: Vec<f32>,
    order: Vec<u16>,
    /// What the events so far mean (its stuck-note guard is `guards.max_note_seconds`).
    state: MusicState,
    /// Keys the guard released whose NOTE_OFF the model has not been fed yet (bit = key index).
    due_offs: u128,
    /// The last event (for the grammar).
    prev: Option<Event>,
    /// The onsets so far and the figures they suggest (`Sampling::memory`).
    motifs: MotifMemory,
    horizon: Option<i64>,
}

impl Engine {
    /// Creates the engine for a loaded model, runs it twice to set up the preallocated outputs,
    /// and primes it with nothing (START only).
    pub fn new(mut model: Model, settings: Settings) -> Result<Engine, Error> {
        settings.sampling.check().map_err(Error::Settings)?;
        check_guards(&settings.guards)?;
        let density = DensityControl::from_model_card(&model.card);
        let (layers, hidden_size, control_size) = (model.card.layers, model.card.hidden, density.size());
        let allocator = Allocator::default();
        let key_table: Vec<[f32; KEY_SIZE]> =
            (0..24).map(|k| model.key_vector(k).and_then(|v| v.try_into().ok()).unwrap_or([0.0; KEY_SIZE])).collect();
        let mut step_in = StepInputs::new(&model, &allocator, control_size)?;
        density.write_one_hot(density.index_of(settings.control), step_in.control.extract_tensor_mut().1);
        settings.key.write(|k| key_table.get(k).copied(), step_in.key.extract_tensor_mut().1);
        let new_hidden = || -> Result<Tensor<f32>, Error> {
            let mut t = Tensor::<f32>::new(&allocator, [layers, 1, hidden_size])?;
            t.extract_tensor_mut().1.fill(0.0);
            Ok(t)
        };
        let new_logits = || Tensor::<f32>::new(&allocator, [1usize, 1, VOCAB]);
        // `preallocate` takes a tensor by value; the handle we keep comes back from the first run's
        // outputs (it shares the tensor). Run 0 reads hidden_0 and writes hidden_1; run 1 the reverse.
        let hidden_0 = new_hidden()?;
        let run_0 = RunOptions::new()?
            .with_outputs(OutputSelector::default().preallocate("logits", new_logits()?).preallocate("hidden_out", new_hidden()?));
        let (logits_0, hidden_1) = {
            let mut outputs = step_in.run(&mut model.session, (&hidden_0).into(), &run_0)?;
            (outputs.remove("logits").expect("selected"), outputs.remove("hidden_out").expect("selected"))
        };
        let run_1 = RunOptions::new()?
            .with_outputs(OutputSelector::default().preallocate("logits", new_logits()?).preallocate("hidden_out", hidden_0));
        let (logits_1, hidden_0) = {
            let mut outputs = step_in.run(&mut model.session, (&hidden_1).into(), &run_1)?;
            (outputs.remove("logits").expect("selected"), outputs.remove("hidden_out").expect("selected"))
        };
        let mut engine = Engine {
            model,
            density,
            settings,
            rng: Pcg32::new(settings.seed),
            step_in,
            beat_clock: None,
            key_table,
            heard: [0; KEY_SIZE],
            chosen_key: None,
            hidden: [hidden_0, hidden_1],
            logits_out: [logits_0, logits_1],
            runs: [run_0, run_1],
            current: 0,
            logits: vec![0.0; VOCAB],
            work: vec![0.0; VOCAB],
            order: vec![0; VOCAB],
            state: MusicState::with_max_note_steps(note_steps(settings.guards.max_note_seconds)),
            due_offs: 0,
            prev: None,
            motifs: MotifMemory::default(),
            horizon: None,
        };
        engine.prime(&[])?;
        Ok(engine)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn density(&self) -> &DensityControl {
        &self.density
    }

    /// Restarts from a zero state and runs START followed by `primer` in one model call. The
    /// guards' state (keys down, pedal, time) follows the primer. Allocates (not a real-time call).
    pub fn prime(&mut self, primer: &[Event]) -> Result<(), Error> {
        let t = primer.len() + 1;
        let mut events = Vec::with_capacity(t);
        events.push(START_TOKEN);
        events.extend(primer.iter().map(|e| e.id() as i64));
        let t = events.len();
        // The state before each input: the fresh state before START, then after each primer event.
        self.state = MusicState::with_max_note_steps(self.state.max_note_steps());
        self.due_offs = 0;
        self.prev = None;
        self.heard = [0; KEY_SIZE];
        self.motifs.clear();
        self.restart_key();
        let mut state = vec![0.0f32; t * STATE_SIZE];
        let mut beat = vec![0.0f32; t * BEAT_SIZE];
        for i in 0..t {
            if i > 0 {
                self.apply(primer[i - 1]);
            }
            write_state_features(&self.state, &mut state[i * STATE_SIZE..(i + 1) * STATE_SIZE]);
            self.write_beat_at(self.state.step(), &mut beat[i * BEAT_SIZE..(i + 1) * BEAT_SIZE]);
        }
        // The whole primer reads the key it ends with (a key chosen from the primer is its key).
        let row: Vec<f32> = self.step_in.control.extract_tensor().1.to_vec();
        let control: Vec<f32> = row.iter().copied().cycle().take(t * row.len()).collect();
        let key_row: Vec<f32> = self.step_in.key.extract_tensor().1.to_vec();
        let key: Vec<f32> = key_row.iter().copied().cycle().take(t * KEY_SIZE).collect();
        let zero = self.model.zero_hidden(1);
        let inputs = Inputs { events: &events, control: &control, key: &key, state: &state, beat: &beat };
        let (logits, hidden) = self.model.run(&inputs, &zero, t, 1)?;
        self.logits.copy_from_slice(&logits[(t - 1) * VOCAB..]);
        self.hidden[self.current].try_extract_tensor_mut::<f32>()?.1.copy_from_slice(&hidden);
        self.write_state();
        Ok(())
    }

    /// Draws the next event (or forces a due NOTE_OFF), feeds it to the model and returns it.
    /// Allocation-free after warm-up.
    pub fn step(&mut self) -> Result<Step, Error> {
        let (event, forced) = match Pitch::from_index(self.due_offs.trailing_zeros() as usize) {
            Some(pitch) => (Event::NoteOff(pitch), true),
            None => {
                self.work.copy_from_slice(&self.logits);
                self.mask();
                let Sampling { temperature, memory, tightness, .. } = self.settings.sampling;
                let step = self.state.step();
                let pull = if self.beat_clock.is_some() { tightness } else { 0.0 };
                self.motifs.blend(&mut self.work, temperature, motif::strength(memory, pull), step);
                if let Some(clock) = &self.beat_clock {
                    let phase = clock.phases_near(step + 1); // the landings are steps after this one
                    tightness::pull(&mut self.work, temperature, tightness, step, clock.period_steps(step), |s| Some(phase(s)));
                    let downbeat = clock.near_downbeat(step, tightness::DOWNBEAT_REACH_BEATS);
                    tightness::accent(&mut self.work, temperature, tightness, downbeat);
                }
                let id = sampling::sample(&mut self.work, &mut self.order, &self.settings.sampling, &mut self.rng);
                (Event::from_id(id as u16).expect("the model predicts ids below 310"), false)
            }
        };
        self.advance(event, forced)
    }

    /// Feeds an event that was not drawn (a note the user played, a closing NOTE_OFF): the guards'
    /// state and the model follow it.
    pub fn feed(&mut self, event: Event) -> Result<Step, Error> {
        self.advance(event, true)
    }

    fn advance(&mut self, event: Event, forced: bool) -> Result<Step, Error> {
        let time = self.state.seconds();
        self.apply(event);
        self.write_state();
        self.run_one(event.id() as i64)?;
        Ok(Step { event, time, forced })
    }

    /// The state and beat features of now into the model's inputs (formats 2 and 3).
    fn write_state(&mut self) {
        if self.step_in.format >= 2 {
            write_state_features(&self.state, self.step_in.state.extract_tensor_mut().1);
        }
        if self.step_in.format >= 3 {
            let mut beat = [0.0f32; BEAT_SIZE];
            self.write_beat_at(self.state.step(), &mut beat);
            self.step_in.beat.extract_tensor_mut().1.copy_from_slice(&beat);
        }
    }

    /// The beat features at `step` of the engine's clock: the song's, or free time.
    fn write_beat_at(&self, step: i64, out: &mut [f32]) {
        write_beat_features(self.beat_clock.as_ref().map(|clock| clock.position(step)).as_ref(), out);
    }

    /// One T = 1 model call on the preallocated tensors.
    fn run_one(&mut self, id: i64) -> Result<(), Error> {
        self.step_in.events.extract_tensor_mut().1[0] = id;
        let i = self.current;
        drop(self.step_in.run(&mut self.model.session, (&self.hidden[i]).into(), &self.runs[i])?);
        self.logits.copy_from_slice(self.logits_out[i].try_extract_tensor::<f32>()?.1);
        self.current = 1 - i;
        Ok(())
    }

    /// Updates the music state; keys the guard releases owe the model their NOTE_OFF.
    fn apply(&mut self, event: Event) {
        let due = &mut self.due_offs;
        self.state.apply(event, |change| {
            if let Change::Release { pitch, why: codec::state::Release::Guard, .. } = change {
                *due |= 1 << pitch.index();
            }
        });
        // A key struck again (fed from outside) is a new note, not the one the guard ended.
        if let Event::NoteOff(pitch) | Event::NoteOn(pitch) = event {
            self.due_offs &= !(1 << pitch.index());
        }
        if let Event::NoteOn(pitch) = event {
            self.motifs.strike(pitch, self.state.step());
            let class = &mut self.heard[pitch.midi() as usize % 12];
            *class = class.saturating_add(1);
            if self.onsets() == KEY_CHOICE_ONSETS {
                self.choose_key();
            }
        }
        self.prev = Some(event);
    }

    /// Note onsets since the last prime, primer included.
    fn onsets(&self) -> u32 {
        self.heard.iter().fold(0, |sum, &n| sum.saturating_add(n))
    }

    /// With `KeyControl::Any`, settles on the card key that best fits the onsets heard so far (if
    /// there have been enough and none is chosen yet) and writes it into the model's key input.
    fn choose_key(&mut self) {
        if self.settings.key != KeyControl::Any || self.chosen_key.is_some() || self.onsets() < KEY_CHOICE_ONSETS {
            return;
        }
        self.chosen_key = best_fitting_key(&self.heard.map(|n| n as f32), &self.key_table).map(|k| k as u8);
        if let Some(k) = self.chosen_key {
            self.step_in.key.extract_tensor_mut().1.copy_from_slice(&self.key_table[k as usize]);
        }
    }

    /// Masks (sets to -inf) every event the grammar or the guards forbid now.
    fn mask(&mut self) {
        let v = &VOCABULARY;
        let work = &mut self.work;
        let full = self.state.keys().count() >= self.settings.guards.max_polyphony;
        // After a VELOCITY only a NOTE_ON may follow (unless none can: then the rule gives way).
        let after_velocity = matches!(self.prev, Some(Event::Velocity(_))) && !full;
        for pitch in Pitch::all() {
            let down = self.state.is_down(pitch);
            if down || full {
                work[v.note_on_offset as usize + pitch.index()] = f32::NEG_INFINITY;
            }
            if !down || after_velocity {
                work[v.note_off_offset as usize + pitch.index()] = f32::NEG_INFINITY;
            }
        }
        let first_velocity = v.velocity_offset as usize;
        if after_velocity || full {
            // A VELOCITY must be followed by a NOTE_ON, so none while the keys are all taken.
            work[first_velocity..first_velocity + codec::VELOCITY_BINS as usize].fill(f32::NEG_INFINITY);
        } else if self.state.last_onset().is_some() {
            work[first_velocity + self.state.velocity().get() as usize] = f32::NEG_INFINITY;
        }
        if after_velocity {
            work[v.time_shift_offset as usize..first_velocity].fill(f32::NEG_INFINITY);
            work[v.pedal_down as usize] = f32::NEG_INFINITY;
            work[v.pedal_up as usize] = f32::NEG_INFINITY;
            return;
        }
        if matches!(self.prev, Some(Event::TimeShift(s)) if s.steps() < MAX_SHIFT_STEPS) {
            work[v.time_shift_offset as usize..first_velocity].fill(f32::NEG_INFINITY);
        }
        // The longest shift allowed: no key may pass its limit, time may not pass the horizon.
        let mut max_shift = VOCABULARY.max_shift_steps as i64;
        if let Some(room) = self.state.steps_to_guard() {
            max_shift = max_shift.min(room);
        }
        if let Some(horizon) = self.horizon {
            max_shift = max_shift.min(horizon - self.state.step());
        }
        let first_shift = v.time_shift_offset as usize;
        for s in max_shift.max(0) as usize..VOCABULARY.max_shift_steps as usize {
            work[first_shift + s] = f32::NEG_INFINITY;
        }
        let pedal = if self.state.pedal_down() { v.pedal_down } else { v.pedal_up };
        work[pedal as usize] = f32::NEG_INFINITY;
    }

    /// Changes what the engine is asked to play; takes effect from the next model call.
    pub fn set_control(&mut self, control: Control) {
        self.settings.control = control;
        let index = self.density.index_of(control);
        self.density.write_one_hot(index, self.step_in.control.extract_tensor_mut().1);
    }

    /// Changes the key to play in (format-2 models; format 1 ignores it); from the next model
    /// call. Changing to `Any` chooses from the onsets since the last prime. Allocation-free.
    pub fn set_key(&mut self, key: KeyControl) {
        if key != self.settings.key {
            self.settings.key = key;
            self.restart_key();
        }
    }

    /// Writes the key setting into the model's key input; `Any` forgets its choice and chooses
    /// again if it has heard enough.
    fn restart_key(&mut self) {
        self.chosen_key = None;
        let table = &self.key_table;
        self.settings.key.write(|k| table.get(k).copied(), self.step_in.key.extract_tensor_mut().1);
        self.choose_key();
    }

    /// Follows the song's beats (`None`: free time) from the next model call on; format-3 models
    /// hear it, the others play as before.
    pub fn set_beat_clock(&mut self, clock: Option<BeatClock>) {
        self.beat_clock = clock;
        self.write_state();
    }

    /// The song's beats the engine follows, if any (for tempo changes and jumps).
    pub fn beat_clock_mut(&mut self) -> Option<&mut BeatClock> {
        self.beat_clock.as_mut()
    }

    pub fn beat_clock(&self) -> Option<&BeatClock> {
        self.beat_clock.as_ref()
    }

    /// The key `KeyControl::Any` settled on (an index of the card's keys), once it has.
    pub fn chosen_key(&self) -> Option<u8> {
        self.chosen_key
    }

    pub fn set_sampling(&mut self, sampling: Sampling) -> Result<(), Error> {
        sampling.check().map_err(Error::Settings)?;
        self.settings.sampling = sampling;
        Ok(())
    }

    pub fn set_guards(&mut self, guards: Guards) -> Result<(), Error> {
        check_guards(&guards)?;
        self.settings.guards = guards;
        self.state.set_max_note_steps(note_steps(guards.max_note_seconds));
        // Keys already past a lowered limit get their NOTE_OFF before anything else.
        for (pitch, key) in self.state.keys_down() {
            if self.state.step() - key.onset >= self.state.max_note_steps() {
                self.due_offs |= 1 << pitch.index();
            }
        }
        Ok(())
    }

    /// Restarts the random generator.
    pub fn reseed(&mut self, seed: u64) {
        self.settings.seed = seed;
        self.rng = Pcg32::new(seed);
    }

    /// No TIME_SHIFT is drawn past this time (seconds from the start of the primer).
    pub fn set_horizon(&mut self, seconds: Option<f64>) {
        self.horizon = seconds.map(|s| (s * STEPS_PER_SECOND).round() as i64);
    }

    /// The engine's clock: seconds from the start of the primer.
    pub fn now(&self) -> f64 {
        self.state.seconds()
    }

    /// What the events so far mean: keys down, pedal, velocity, clock.
    pub fn state(&self) -> &MusicState {
        &self.state
    }

    /// The raw logits for the next event (before guards and temperature).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Lifts every key and the pedal (fed to the model, so the engine can go on afterwards).
    pub fn release_all(&mut self) -> Result<Vec<Step>, Error> {
        let mut steps = Vec::new();
        let down: Vec<Pitch> = self.state.keys_down().map(|(pitch, _)| pitch).collect();
        for pitch in down {
            steps.push(self.feed(Event::NoteOff(pitch))?);
        }
        if self.state.pedal_down() {
            steps.push(self.feed(Event::PedalUp)?);
        }
        Ok(steps)
    }
}

fn note_steps(seconds: f64) -> i64 {
    (seconds * STEPS_PER_SECOND).round() as i64
}

fn check_guards(guards: &Guards) -> Result<(), Error> {
    if guards.max_polyphony == 0 || guards.max_polyphony > NOTES {
        return Err(Error::Settings(format!("max polyphony must lie in 1..={NOTES}, got {}", guards.max_polyphony)));
    }
    if !guards.max_note_seconds.is_finite() || guards.max_note_seconds < 0.01 {
        return Err(Error::Settings(format!("the longest note must be at least 0.01 s, got {}", guards.max_note_seconds)));
    }
    Ok(())
}

/// The preallocated inputs of a T = 1 step (those the model's format reads) and where the model
/// wants each.
struct StepInputs {
    events: Tensor<i64>,
    control: Tensor<f32>,
    key: Tensor<f32>,
    state: Tensor<f32>,
    beat: Tensor<f32>,
    format: u32,
    /// The model's positions of events, control, key, state, beat and hidden (of those it has).
    order: [usize; 6],
}

impl StepInputs {
    fn new(model: &Model, allocator: &Allocator, control_size: usize) -> Result<StepInputs, Error> {
        let mut events = Tensor::<i64>::new(allocator, [1usize, 1])?;
        events.extract_tensor_mut().1[0] = START_TOKEN;
        let features = |size: usize| -> Result<Tensor<f32>, Error> {
            let mut t = Tensor::<f32>::new(allocator, [1usize, 1, size])?;
            t.extract_tensor_mut().1.fill(0.0);
            Ok(t)
        };
        let mut state = features(STATE_SIZE)?;
        write_state_features(&MusicState::new(), state.extract_tensor_mut().1);
        let mut beat = features(BEAT_SIZE)?;
        write_beat_features(None, beat.extract_tensor_mut().1);
        let position = |name: &str| model.session.inputs().iter().position(|o| o.name() == name).unwrap_or(usize::MAX);
        let order = ["events", "control", "key", "state", "beat", "hidden"].map(position);
        Ok(StepInputs { events, control: features(control_size)?, key: features(KEY_SIZE)?, state, beat, format: model.format(), order })
    }

    /// One model call that reads `hidden` and writes into `run`'s preallocated outputs.
    fn run<'r>(
        &self,
        session: &'r mut Session,
        hidden: SessionInputValue<'_>,
        run: &'r RunOptions<HasSelectedOutputs>,
    ) -> Result<SessionOutputs<'r>, Error> {
        let o = self.order;
        let (events, control, key, state, beat) =
            ((&self.events).into(), (&self.control).into(), (&self.key).into(), (&self.state).into(), (&self.beat).into());
        Ok(match self.format {
            1 => session.run_with_options(ordered_inputs([o[0], o[1], o[5]], [events, control, hidden]), run)?,
            2 => session.run_with_options(ordered_inputs([o[0], o[1], o[2], o[3], o[5]], [events, control, key, state, hidden]), run)?,
            _ => session.run_with_options(ordered_inputs(o, [events, control, key, state, beat, hidden]), run)?,
        })
    }
}

/// The inputs of a T = 1 step in the model's input order, without allocating: `order[k]` is the
/// model's position of `inputs[k]` (the positions of the model's N inputs are 0..N in some order).
fn ordered_inputs<'v, const N: usize>(order: [usize; N], inputs: [SessionInputValue<'v>; N]) -> [SessionInputValue<'v>; N] {
    let mut values = inputs.map(Some);
    std::array::from_fn(|model_position| {
        let k = order.iter().position(|&p| p == model_position).expect("a permutation");
        values[k].take().expect("each input once")
    })
}

/// What `generate` produced.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// The primer's events followed by the generated ones (closing NOTE_OFFs included).
    pub events: Vec<Event>,
    /// How many of `events` are the primer.
    pub primer_events: usize,
    /// Generated events that a guard forced (or the closing ones).
    pub forced: usize,
    /// Seconds of music generated (after the primer).
    pub seconds: f64,
    /// Wall-clock seconds spent priming (one model call over the primer).
    pub prime_seconds: f64,
    /// Wall-clock seconds spent drawing the continuation (stepping, closing events included).
    pub wall_seconds: f64,
    /// Wall-clock seconds of every `step()` (one T = 1 model call with masking and sampling).
    pub step_seconds: Vec<f32>,
}

impl Generated {
    /// The median and the 99th percentile of the step times, in microseconds.
    pub fn step_percentiles(&self) -> (f64, f64) {
        if self.step_seconds.is_empty() {
            return (0.0, 0.0);
        }
        let mut sorted = self.step_seconds.clone();
        sorted.sort_by(f32::total_cmp);
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64 * 1e6;
        (at(0.5), at(0.99))
    }

    /// The generated events only (no primer).
    pub fn continuation(&self) -> &[Event] {
        &self.events[self.primer_events..]
    }

    /// The performance, with or without the primer at its start.
    pub fn performance(&self, with_primer: bool) -> Performance {
        codec::decode(if with_primer { &self.events } else { self.continuation() })
    }

    /// A standard MIDI file of the performance.
    pub fn midi(&self, with_primer: bool) -> Vec<u8> {
        crate::codec::midi::write(&self.performance(with_primer))
    }
}

/// Primes the engine and draws `seconds` of music after the primer; every key and the pedal are
/// lifted at the end.
pub fn generate(engine: &mut Engine, primer: &[Event], seconds: f64) -> Result<Generated, Error> {
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(Error::Settings(format!("the length must be a positive number of seconds, got {seconds}")));
    }
    let started = std::time::Instant::now();
    engine.prime(primer)?;
    let prime_seconds = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let start = engine.now();
    let end = start + seconds;
    let end_steps = (end * STEPS_PER_SECOND).round() as i64;
    engine.set_horizon(Some(end));
    let mut events = primer.to_vec();
    let mut forced = 0;
    let mut step_seconds = Vec::with_capacity((seconds * 60.0) as usize);
    while engine.state.step() < end_steps {
        let started = std::time::Instant::now();
        let step = engine.step()?;
        step_seconds.push(started.elapsed().as_secs_f32());
        forced += step.forced as usize;
        events.push(step.event);
    }
    let closing = engine.release_all()?;
    forced += closing.len();
    events.extend(closing.iter().map(|s| s.event));
    engine.set_horizon(None);
    Ok(Generated {
        events,
        primer_events: primer.len(),
        forced,
        seconds: engine.now() - start,
        prime_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
        step_seconds,
    })
}
