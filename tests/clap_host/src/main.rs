//! A CLAP test host for pianoforte (clack-host): loads the bundled `pianoforte.clap`, plays it for
//! simulated minutes at several buffer sizes and sample rates with transport starts, stops and
//! jumps and parameter automation, and checks the MIDI that comes out against the engine's own
//! trace of what it queued (exact samples, no stuck notes, everything off on stop, pedal up,
//! density automation, input passing through). `--suite bench` measures process() and the engine
//! thread in real time.
//!
//! ```text
//! pianoforte-clap-host [--plugin target/bundled/pianoforte.clap] [--suite full|quick|bench]
//!                      [--source model|synthetic] [--require-density] [--model FILE.onnx]
//! suites: full (everything but the benchmark), quick, bench, density, state, no-runtime, bounce, perform,
//!         unload (issue 18: bounce.rs, unload.rs), tempo, tempo-seeds (issue 19: tempo.rs)
//! ```
//!
//! With `--source synthetic` the plugin plays its deterministic test pattern instead of the model
//! (the plugin is re-run in a child process with `PIANOFORTE_SOURCE=synthetic`).

mod bounce;
mod check;
mod host;
mod perform;
mod render;
mod tempo;
mod trace;
mod unload;

use host::{Action::*, Scenario, Segment, Sizes, seg};
use std::path::PathBuf;
use std::process::ExitCode;

struct Options {
    plugin: PathBuf,
    suite: String,
    source: String,
    require_density: bool,
    /// A model file for the plugin to load (as a user-chosen model, through the plugin state).
    model: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut options = Options {
        plugin: root.join("target/bundled/pianoforte.clap"),
        suite: "full".into(),
        source: "model".into(),
        require_density: false,
        model: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--plugin" => options.plugin = args.next().ok_or("--plugin needs a path")?.into(),
            "--suite" => options.suite = args.next().ok_or("--suite needs a name")?,
            "--source" => options.source = args.next().ok_or("--source needs model or synthetic")?,
            "--require-density" => options.require_density = true,
            "--model" => options.model = Some(args.next().ok_or("--model needs a path")?.into()),
            "-h" | "--help" => {
                println!(
                    "usage: pianoforte-clap-host [--plugin PATH] [--suite full|quick|bench|density|state|no-runtime|bounce|unload|tempo|perform] [--source model|synthetic] [--require-density] [--model FILE.onnx]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn measured(label: &'static str, seconds: f64, actions: Vec<host::Action>) -> Segment {
    Segment { seconds, actions, measure: Some(label) }
}

fn scenario(name: &str, sample_rate: f64, sizes: Sizes, segments: Vec<Segment>) -> Scenario {
    Scenario::new(name, sample_rate, sizes, segments)
}

/// Rendered offline (CLAP render extension) as fast as the plugin goes: no waiting in the host.
fn offline(mut s: Scenario) -> Scenario {
    s.offline = true;
    s.lockstep = false;
    s.speed = 0.0;
    s
}

/// Paced to the wall clock (`speed` times real time), the engine never waited for.
fn paced(mut s: Scenario, speed: f64) -> Scenario {
    s.lockstep = false;
    s.speed = speed;
    s
}

/// A session as a musician has it (issue 9): offline bounces, loops, odd transports, a full
/// host buffer, the musician's notes on the plugin's own channel, a long run with automation.
fn session_suite() -> Vec<Scenario> {
    let mut varispeed = scenario(
        "varispeed: the song position moves at 1.5x, then a beats-only transport at 0.5x: no spurious cuts",
        48_000.0,
        Sizes::Fixed(256),
        vec![seg(8.0, vec![Transport(true)]), seg(0.5, vec![Transport(false)])],
    );
    varispeed.position_speed = 1.5;
    let mut beats_only = scenario(
        "a transport with beats only (no seconds timeline), at 0.5x",
        44_100.0,
        Sizes::Fixed(512),
        vec![seg(8.0, vec![Transport(true)]), seg(0.5, vec![Transport(false)])],
    );
    beats_only.beats_only = true;
    beats_only.position_speed = 0.5;
    let mut same_channel = scenario(
        "the musician plays on the plugin's own channel (Free mode): passed through, nothing stuck",
        48_000.0,
        Sizes::Fixed(128),
        vec![
            seg(2.0, vec![Transport(true)]),
            seg(0.5, vec![Note(60, 90, 0.4)]),
            seg(0.5, vec![Note(64, 90, 2.0)]),
            seg(3.0, vec![]),
            seg(0.5, vec![Transport(false)]),
        ],
    );
    same_channel.input_channel = 0;
    let mut long = vec![seg(0.0, vec![Transport(true)])];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut random = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    const TEMPERATURES: [&str; 4] = ["0.6", "0.9", "1.2", "1.5"];
    const DENSITIES: [&str; 5] = ["Auto", "2", "6", "12", "20"];
    const SEEDS: [&str; 3] = ["2", "3", "4"];
    for _ in 0..60 {
        let mut actions = vec![Param("Temperature", TEMPERATURES[random(4) as usize]), Param("Density", DENSITIES[random(5) as usize])];
        if random(4) == 0 {
            actions.push(Param("Seed", SEEDS[random(3) as usize]));
        }
        long.push(seg(30.0, actions));
    }
    long.push(seg(1.0, vec![Transport(false)]));
    vec![
        offline(scenario(
            "offline bounce, faster than real time, no lockstep: every note at its sample, none skipped",
            48_000.0,
            Sizes::Fixed(512),
            vec![
                seg(20.0, vec![Transport(true), Param("Density", "12")]),
                seg(10.0, vec![Param("Density", "Auto")]),
                seg(0.5, vec![Transport(false)]),
            ],
        )),
        offline(scenario(
            "offline, 192 kHz, 1-sample buffers",
            192_000.0,
            Sizes::Fixed(1),
            vec![seg(1.5, vec![Transport(true)]), seg(0.2, vec![Transport(false)])],
        )),
        varispeed,
        beats_only,
        same_channel,
        offline(scenario("30 minutes offline with random automation (temperature, density, seed)", 48_000.0, Sizes::Fixed(512), long)),
    ]
}

/// The generated events of each performance of a run (split at its starts), with clock samples
/// relative to the start and without the cuts (a stop's, the next start's) at a block's first sample.
fn performances(run: &host::Run) -> Vec<Vec<(i64, host::OutKind)>> {
    let cut_blocks: Vec<usize> = run.cuts.iter().map(|c| c.block).collect();
    let mut starts = run.starts.clone();
    starts.push((usize::MAX, 0, 0));
    starts
        .windows(2)
        .map(|w| {
            let ((block, clock, _), (next, _, _)) = (w[0], w[1]);
            run.events
                .iter()
                .filter(|e| e.channel == 0 && e.block >= block && e.block < next)
                .filter(|e| !(e.time == 0 && cut_blocks.contains(&e.block) && !matches!(e.kind, host::OutKind::On { .. })))
                .map(|e| (e.clock_sample - clock, e.kind))
                .collect()
        })
        .collect()
}

/// The built-in piano as the host hears it (issue 11): sound while notes play, rising at onsets,
/// silence after a stop, nothing out of range; "MIDI only" is digital silence; the same take is
/// bit-identical twice and offline equals real time.
fn audio_checks(plugin: &host::Plugin, trace_dir: &std::path::Path) -> Vec<(String, Result<String, String>)> {
    let rate = 48_000.0;
    let take = |extra: Vec<host::Action>| {
        let mut first = vec![Transport(true), Param("Density", "16"), Param("Velocity min", "100")];
        first.extend(extra);
        let mut s = scenario("audio", rate, Sizes::Fixed(512), vec![seg(6.0, first), seg(4.0, vec![Transport(false)])]);
        s.record_audio = true;
        s
    };
    let record = |s: &Scenario| host::run(plugin, s, trace_dir, None);
    let mut outcomes = Vec::new();
    let piano = match record(&offline(take(vec![]))) {
        Ok(run) => run,
        Err(e) => return vec![("the built-in piano".into(), Err(e))],
    };
    outcomes.push(("the built-in piano: sound while it plays, rising at onsets, silence after the stop".into(), judge_audio(&piano, rate)));
    let silent = record(&offline(take(vec![Param("Sound", "MIDI only")]))).and_then(|run| {
        let loud = run.audio.iter().flatten().filter(|&&x| x != 0.0).count();
        let notes = run.events.iter().filter(|e| matches!(e.kind, host::OutKind::On { .. })).count();
        match (loud, notes) {
            (0, n) if n > 20 => Ok(format!("{n} notes out as MIDI, every sample 0.0")),
            (0, n) => Err(format!("only {n} notes: nothing to hear")),
            (loud, _) => Err(format!("{loud} samples are not 0.0")),
        }
    });
    outcomes.push(("Sound: MIDI only is digital silence, MIDI as before".into(), silent));
    let same = |name: &str, other: Result<host::Run, String>| {
        let outcome = other.and_then(|run| match run.audio == piano.audio {
            true => Ok(format!("{} samples bit-identical", run.audio[0].len())),
            false => {
                let at = run.audio[0].iter().zip(&piano.audio[0]).position(|(a, b)| a.to_bits() != b.to_bits());
                Err(format!("the audio differs from sample {at:?} on ({} vs {} samples)", run.audio[0].len(), piano.audio[0].len()))
            }
        });
        (name.to_string(), outcome)
    };
    outcomes.push(same("the same take twice (offline): bit-identical audio", record(&offline(take(vec![])))));
    // Real time at the model's own density (16 notes/s at full velocity asks more of a loaded
    // machine than it may give in real time; offline never skips).
    let calm = |s: Scenario| {
        let mut s = s;
        s.segments[0].actions.retain(|a| !matches!(a, Param("Density", _)));
        s
    };
    let realtime = record(&paced(calm(take(vec![])), 1.0));
    let bounce = record(&offline(calm(take(vec![]))));
    let outcome = match (realtime, bounce) {
        (Ok(a), Ok(b)) if a.audio == b.audio => Ok(format!("{} samples bit-identical", a.audio[0].len())),
        (Ok(a), Ok(b)) => {
            let at = a.audio[0].iter().zip(&b.audio[0]).position(|(x, y)| x.to_bits() != y.to_bits());
            Err(format!("the audio differs from sample {at:?} on"))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    outcomes.push(("real time (paced) and offline: bit-identical audio".into(), outcome));
    outcomes
}

/// For each of the first `count` windows of `window` samples: whether a generated key is down
/// during it (from the NOTE_ONs and NOTE_OFFs the host received).
fn sounding_windows(run: &host::Run, window: usize, count: usize) -> Vec<bool> {
    let mut down = vec![false; count];
    let mut pressed: std::collections::HashMap<u8, usize> = std::collections::HashMap::new();
    let mut mark = |from: usize, to: usize| (from / window..=(to / window).min(count.saturating_sub(1))).for_each(|w| down[w] = true);
    for e in &run.events {
        match e.kind {
            host::OutKind::On { key, .. } => _ = pressed.insert(key, e.host_sample as usize),
            host::OutKind::Off { key } => {
                if let Some(from) = pressed.remove(&key) {
                    mark(from, e.host_sample as usize);
                }
            }
            _ => {}
        }
    }
    for (_, from) in pressed {
        mark(from, count * window);
    }
    down
}

/// Judges a recorded piano take: 6 s playing (16 notes/s, loud), then 4 s stopped.
fn judge_audio(run: &host::Run, rate: f64) -> Result<String, String> {
    let [left, right] = &run.audio;
    let all = || left.iter().chain(right);
    if let Some(bad) = all().find(|x| !x.is_finite()) {
        return Err(format!("a sample is {bad}"));
    }
    let peak = all().fold(0.0f32, |m, x| m.max(x.abs()));
    if peak > 1.0 {
        return Err(format!("peak {:.2} dBFS, above 0 dBFS", 20.0 * peak.log10()));
    }
    let db = |x: f64| 10.0 * x.max(1e-30).log10();
    let power = |from: usize, to: usize| {
        let (from, to) = (from.min(left.len()), to.min(left.len()));
        (from..to).map(|i| (left[i] as f64).powi(2) + (right[i] as f64).powi(2)).sum::<f64>() / (2 * (to - from).max(1)) as f64
    };
    // While it plays: every 100 ms window from 0.5 s to 6 s in which a key is down well above
    // silence (a model may rest between phrases; most windows must have keys down).
    let window = (rate * 0.1) as usize;
    let keys_down = sounding_windows(run, window, 60);
    let judged: Vec<usize> = (5..60).filter(|&w| keys_down[w]).collect();
    if judged.len() * 10 < 55 * 8 {
        return Err(format!("keys were down in only {} of 55 windows while playing", judged.len()));
    }
    let quietest = judged.iter().map(|&w| db(power(w * window, (w + 1) * window))).fold(f64::INFINITY, f64::min);
    if quietest < -50.0 {
        let at = judged.iter().find(|&&w| db(power(w * window, (w + 1) * window)) < -50.0);
        return Err(format!("a 100 ms window with keys down is at {quietest:.1} dBFS (window {at:?})"));
    }
    // Energy rises at onsets: 20 ms after a NOTE_ON against the 20 ms before it.
    let short = (rate * 0.02) as usize;
    let onsets: Vec<usize> =
        run.events.iter().filter(|e| matches!(e.kind, host::OutKind::On { .. })).map(|e| e.host_sample as usize).collect();
    let rises = onsets.iter().filter(|&&at| at > short && power(at, at + short) > power(at - short, at)).count();
    if rises * 10 < onsets.len() * 7 {
        return Err(format!("energy rose at only {rises} of {} onsets", onsets.len()));
    }
    // After the stop (at 6 s, pedal lifted): below -90 dBFS within 3 s.
    let tail = &left[(rate * 9.0) as usize..];
    let tail_peak = tail.iter().chain(&right[(rate * 9.0) as usize..]).fold(0.0f32, |m, x| m.max(x.abs()));
    if tail_peak > 10f32.powf(-90.0 / 20.0) {
        return Err(format!("3 s after the stop the piano still sounds at {:.1} dBFS", 20.0 * tail_peak.log10()));
    }
    Ok(format!(
        "{} notes; peak {:.1} dBFS; quietest 100 ms with keys down {quietest:.1} dBFS; energy rose at {rises} of {} onsets; {:.0} dBFS 3 s after the stop",
        onsets.len(),
        20.0 * peak.log10(),
        onsets.len(),
        20.0 * tail_peak.max(1e-12).log10()
    ))
}

/// Where two lists of events first differ, in words.
fn first_difference(a: &[(i64, host::OutKind)], b: &[(i64, host::OutKind)]) -> Option<String> {
    let at = a.iter().zip(b).position(|(x, y)| x != y);
    match at {
        Some(i) => Some(format!("event {i}: {:?} vs {:?}", a[i], b[i])),
        None if a.len() != b.len() => Some(format!("{} vs {} events", a.len(), b.len())),
        None => None,
    }
}

/// Reproducibility (issue 9): the same start plays the same take, offline or in real time, at any
/// buffer size, and with automation two bounces are identical.
fn reproducibility(plugin: &host::Plugin, trace_dir: &std::path::Path) -> Vec<(String, Result<String, String>)> {
    let take = |sizes: Sizes, segments: Vec<Segment>| scenario("take", 48_000.0, sizes, segments);
    let twice = vec![
        seg(6.0, vec![Transport(true)]),
        seg(0.5, vec![Transport(false)]),
        seg(6.0, vec![Jump(0.0), Transport(true)]),
        seg(0.5, vec![Transport(false)]),
    ];
    let looped: Vec<Segment> = std::iter::once(seg(2.0, vec![Transport(true)]))
        .chain((0..5).map(|_| seg(2.0, vec![Jump(0.0)])))
        .chain([seg(0.3, vec![Transport(false)])])
        .collect();
    let automated = vec![
        seg(3.0, vec![Transport(true), Param("Temperature", "0.7")]),
        seg(3.0, vec![Param("Temperature", "1.4"), Param("Density", "14")]),
        seg(3.0, vec![Param("Density", "Auto"), Param("Velocity min", "30")]),
        seg(0.5, vec![Transport(false)]),
    ];
    let one = vec![seg(6.0, vec![Transport(true)]), seg(0.5, vec![Transport(false)])];
    let cases: Vec<(&str, Vec<Scenario>)> = vec![
        ("the same start twice (offline): identical takes", vec![offline(take(Sizes::Fixed(512), twice.clone()))]),
        ("a 2-second loop, six times (offline): every pass identical", vec![offline(take(Sizes::Fixed(256), looped))]),
        (
            "offline at 64 and at 1024 samples per buffer: identical",
            vec![offline(take(Sizes::Fixed(64), one.clone())), offline(take(Sizes::Fixed(1024), one.clone()))],
        ),
        (
            "real time (paced, no lockstep) and offline: identical",
            vec![paced(take(Sizes::Fixed(512), one.clone()), 1.0), offline(take(Sizes::Fixed(512), one))],
        ),
        (
            "two offline bounces with automation: identical",
            vec![offline(take(Sizes::Fixed(512), automated.clone())), offline(take(Sizes::Fixed(512), automated))],
        ),
    ];
    cases
        .into_iter()
        .map(|(name, scenarios)| {
            let mut takes = Vec::new();
            for s in &scenarios {
                match host::run(plugin, s, trace_dir, None) {
                    Ok(run) => takes.extend(performances(&run)),
                    Err(e) => return (name.to_string(), Err(e)),
                }
            }
            let notes = takes.first().map_or(0, |t| t.iter().filter(|e| matches!(e.1, host::OutKind::On { .. })).count());
            if takes.len() < 2 || notes < 10 {
                return (name.to_string(), Err(format!("{} performances, {notes} notes in the first: nothing to compare", takes.len())));
            }
            for (i, other) in takes.iter().enumerate().skip(1) {
                if let Some(difference) = first_difference(&takes[0], other) {
                    return (name.to_string(), Err(format!("performance {i} differs from the first: {difference}")));
                }
            }
            (name.to_string(), Ok(format!("{} performances of {} events ({notes} notes) identical", takes.len(), takes[0].len())))
        })
        .collect()
}

fn full_suite() -> Vec<Scenario> {
    vec![
        scenario(
            "48 kHz, 64-sample buffers: play, stop, play, jump back, stop",
            48_000.0,
            Sizes::Fixed(64),
            vec![
                seg(20.0, vec![Transport(true)]),
                seg(2.0, vec![Transport(false)]),
                seg(15.0, vec![Transport(true)]),
                seg(15.0, vec![Jump(3.0)]),
                seg(1.0, vec![Transport(false)]),
            ],
        ),
        scenario(
            "44.1 kHz, buffers of 1..512 samples varying, temperature and velocity automation",
            44_100.0,
            Sizes::Cycle(vec![512, 1, 7, 64, 333, 128, 500, 2]),
            vec![
                seg(10.0, vec![Transport(true), Param("Temperature", "0.5")]),
                seg(10.0, vec![Param("Temperature", "1.5")]),
                seg(10.0, vec![Param("Velocity min", "40"), Param("Velocity max", "100"), Param("Temperature", "1.0")]),
                seg(1.0, vec![Transport(false)]),
            ],
        ),
        scenario(
            "22.05 kHz, 8192-sample buffers, jump to the start",
            22_050.0,
            Sizes::Fixed(8192),
            vec![seg(30.0, vec![Transport(true)]), seg(10.0, vec![Jump(0.0)]), seg(1.0, vec![Transport(false)])],
        ),
        scenario(
            "192 kHz, 256-sample buffers, bypass on and off",
            192_000.0,
            Sizes::Fixed(256),
            vec![
                seg(15.0, vec![Transport(true)]),
                seg(2.0, vec![Param("Bypass", "On")]),
                seg(10.0, vec![Param("Bypass", "Off")]),
                seg(1.0, vec![Transport(false)]),
            ],
        ),
        scenario(
            "48 kHz then re-activated at 96 kHz (1024-sample buffers)",
            48_000.0,
            Sizes::Fixed(1024),
            vec![seg(10.0, vec![Transport(true)]), seg(10.0, vec![Reactivate(96_000.0)]), seg(1.0, vec![Transport(false)])],
        ),
        scenario(
            "no host transport: the Play switch",
            48_000.0,
            Sizes::Fixed(480),
            vec![
                seg(12.0, vec![NoTransport, Param("Play", "On")]),
                seg(1.0, vec![Param("Play", "Off")]),
                seg(5.0, vec![Param("Play", "On")]),
                seg(1.0, vec![Param("Play", "Off")]),
            ],
        ),
        scenario(
            "a new seed starts a new performance",
            48_000.0,
            Sizes::Fixed(256),
            vec![seg(10.0, vec![Transport(true)]), seg(10.0, vec![Param("Seed", "7")]), seg(1.0, vec![Transport(false)])],
        ),
        scenario("1-sample buffers", 48_000.0, Sizes::Fixed(1), vec![seg(4.0, vec![Transport(true)]), seg(0.5, vec![Transport(false)])]),
        density_scenario(),
    ]
}

fn density_scenario() -> Scenario {
    scenario(
        "density automation: 3, then 16 notes/s, then Auto",
        48_000.0,
        Sizes::Fixed(512),
        vec![
            measured("3 notes/s", 20.0, vec![Transport(true), Param("Density", "3")]),
            measured("16 notes/s", 20.0, vec![Param("Density", "16")]),
            measured("Auto", 10.0, vec![Param("Density", "Auto")]),
            seg(1.0, vec![Transport(false)]),
        ],
    )
}

/// Continue my playing: the musician's first note cuts the performance, the engine is silent
/// while they play, and continues after they stop. Also across a stop and a bypass while listening.
fn continue_scenarios() -> Vec<Scenario> {
    let mode = || Param("Mode", "Continue my playing");
    vec![
        paced(
            scenario(
                "Continue my playing: input passes through, the engine listens, then continues",
                48_000.0,
                Sizes::Fixed(256),
                vec![
                    seg(4.0, vec![Transport(true), mode()]),
                    seg(0.4, vec![Note(60, 90, 0.3)]),
                    seg(0.4, vec![Note(64, 80, 0.3)]),
                    measured("while the musician plays", 0.8, vec![Note(67, 70, 0.6)]),
                    measured("after the musician stopped", 6.0, vec![]),
                    seg(1.0, vec![Transport(false)]),
                ],
            ),
            2.0,
        ),
        paced(
            scenario(
                "Continue my playing: a key held through a stop and released while stopped",
                48_000.0,
                Sizes::Fixed(256),
                vec![
                    seg(3.0, vec![Transport(true), mode()]),
                    seg(0.5, vec![Note(60, 90, 1.5)]),
                    seg(2.0, vec![Transport(false)]),
                    measured("after the musician stopped", 6.0, vec![Transport(true)]),
                    seg(0.5, vec![Transport(false)]),
                ],
            ),
            2.0,
        ),
        paced(
            scenario(
                "Continue my playing: bypass while listening, the key released while bypassed",
                48_000.0,
                Sizes::Fixed(256),
                vec![
                    seg(3.0, vec![Transport(true), mode()]),
                    seg(0.5, vec![Note(62, 90, 1.0)]),
                    seg(1.5, vec![Param("Bypass", "On")]),
                    measured("after the musician stopped", 6.0, vec![Param("Bypass", "Off")]),
                    seg(0.5, vec![Transport(false)]),
                ],
            ),
            2.0,
        ),
    ]
}

/// Model files a musician might point the plugin at by mistake: it must say so and play the
/// built-in model, never hang (a FIFO), never read gigabytes, never crash (garbage).
fn bad_model_files(folder: &std::path::Path) -> Vec<(&'static str, PathBuf)> {
    let fifo = folder.join("model-fifo.onnx");
    let _ = std::process::Command::new("mkfifo").arg(&fifo).status();
    let huge = folder.join("model-huge.onnx");
    if let Ok(file) = std::fs::File::create(&huge) {
        let _ = file.set_len(3 << 30); // sparse: 3 GB that take no disk
    }
    let garbage = folder.join("model-garbage.onnx");
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let _ = std::fs::write(&garbage, bytes);
    vec![("a FIFO", fifo), ("a 3 GB file", huge), ("random bytes", garbage)]
}

fn bench_suite() -> Vec<Scenario> {
    let mut stopped = paced(
        scenario(
            "benchmark: stopped (48 kHz, 512-sample buffers, the transport standing still)",
            48_000.0,
            Sizes::Fixed(512),
            vec![seg(10.0, vec![Transport(false)])],
        ),
        1.0,
    );
    stopped.expect_silence = true;
    let rows = [("Piano", 64u32, false), ("Piano", 512, false), ("MIDI only", 64, false), ("MIDI only", 512, false)];
    // The same with the audio thread at real-time priority, as a DAW runs it.
    let realtime = [("Piano", 64u32, true), ("Piano", 512, true), ("MIDI only", 64, true)];
    let playing = rows.into_iter().chain(realtime).map(|(sound, buffer, realtime)| {
        let priority = if realtime { ", audio thread real-time" } else { "" };
        let mut s = paced(
            scenario(
                &format!("benchmark: 48 kHz, {buffer}-sample buffers, 16 notes/s, real time, Sound: {sound}{priority}"),
                48_000.0,
                Sizes::Fixed(buffer),
                vec![
                    measured("16 notes/s", 30.0, vec![Transport(true), Param("Density", "16"), Param("Sound", sound)]),
                    seg(0.5, vec![Transport(false)]),
                ],
            ),
            1.0,
        );
        s.realtime = realtime;
        s
    });
    playing.chain([stopped]).collect()
}

fn quick_suite() -> Vec<Scenario> {
    vec![
        scenario(
            "quick: 48 kHz, 64-sample buffers, play, stop, play, jump, stop",
            48_000.0,
            Sizes::Fixed(64),
            vec![
                seg(4.0, vec![Transport(true)]),
                seg(0.5, vec![Transport(false)]),
                seg(3.0, vec![Transport(true), Param("Density", "12")]),
                seg(3.0, vec![Jump(1.0), Param("Bypass", "On")]),
                seg(2.0, vec![Param("Bypass", "Off")]),
                seg(0.5, vec![Transport(false)]),
            ],
        ),
        scenario(
            "quick: Play switch without transport, varying buffers",
            44_100.0,
            Sizes::Cycle(vec![1, 100, 512, 33]),
            vec![seg(4.0, vec![NoTransport, Param("Play", "On")]), seg(0.5, vec![Param("Play", "Off")])],
        ),
        paced(
            scenario(
                "quick: the musician's notes in Continue mode, then re-activated at 96 kHz",
                48_000.0,
                Sizes::Fixed(256),
                vec![
                    seg(2.0, vec![Transport(true), Param("Mode", "Continue my playing")]),
                    seg(0.4, vec![Note(60, 90, 0.3), Param("Velocity min", "20")]),
                    seg(2.5, vec![Note(64, 80, 0.3)]),
                    seg(2.0, vec![Reactivate(96_000.0)]),
                    seg(0.3, vec![Transport(false)]),
                ],
            ),
            4.0,
        ),
        offline(scenario(
            "quick: offline, waiting for the engine in process()",
            48_000.0,
            Sizes::Fixed(512),
            vec![seg(4.0, vec![Transport(true)]), seg(0.3, vec![Transport(false)])],
        )),
    ]
}

/// ONNX Runtime missing (the host sets ORT_DYLIB_PATH to a file that does not exist): the plugin
/// loads, runs and stays silent.
fn no_runtime_suite() -> Vec<Scenario> {
    let mut s = scenario(
        "no ONNX Runtime: the plugin loads, processes and stays silent",
        48_000.0,
        Sizes::Fixed(256),
        vec![seg(3.0, vec![Transport(true)]), seg(0.5, vec![Transport(false)]), seg(2.0, vec![Transport(true), Param("Play", "On")])],
    );
    s.lockstep = false;
    s.speed = 2.0;
    s.expect_silence = true;
    vec![s]
}

/// The host takes one event per block: releases the plugin could not send must follow later.
fn output_full_scenario() -> Scenario {
    let mut s = scenario(
        "a full host buffer (one event per block taken): nothing sticks",
        48_000.0,
        Sizes::Fixed(64),
        vec![seg(6.0, vec![Transport(true), Param("Density", "16")]), seg(1.0, vec![Transport(false)])],
    );
    s.output_limit = Some(1);
    s
}

/// The engine thread panics (`PIANOFORTE_TEST_PANIC`, test builds only): notes end, the pedal
/// comes up, the host runs on.
fn panic_scenario() -> Scenario {
    paced(
        scenario(
            "the engine thread panics: notes end, the pedal lifts, the host runs on",
            48_000.0,
            Sizes::Fixed(256),
            vec![seg(4.0, vec![Transport(true)]), measured("after the panic", 3.0, vec![]), seg(0.5, vec![Transport(false)])],
        ),
        2.0,
    )
}

/// Prints a check's outcome; true when it passed.
fn print_outcome(name: &str, outcome: &Result<String, String>) -> bool {
    match outcome {
        Ok(note) => println!("\n== {name}\n  {note}\n  ok"),
        Err(e) => println!("\n== {name}\n  ERROR: {e}"),
    }
    outcome.is_ok()
}

/// `unload`: the load/destroy/dlclose cycles in a child process (`unload-child`, which runs them).
fn unload_suite(options: &Options, trace_dir: &std::path::Path) -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = options.model.clone().unwrap_or_else(|| root.join("models/pianoforte-gru.onnx"));
    let model = std::fs::canonicalize(&model).unwrap_or(model);
    let name = "load, play and destroy the plugin with a model load in flight, then dlclose, 50 times: no crash, no thread left";
    let outcome = match options.suite.as_str() {
        "unload-child" => unload::cycles(&options.plugin, &model, trace_dir),
        _ => unload::run_in_child(&options.plugin, &model),
    };
    let _ = std::fs::remove_dir_all(trace_dir);
    if options.suite == "unload-child" {
        // The parent prints the verdict; its last line is the reason.
        println!("{}", outcome.as_ref().unwrap_or_else(|e| e));
        return if outcome.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let ok = print_outcome(name, &outcome);
    println!("\nclap host: {} passed, {} failed", usize::from(ok), usize::from(!ok));
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let trace_dir = std::env::temp_dir().join(format!("pianoforte-clap-host-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&trace_dir);
    std::fs::create_dir_all(&trace_dir).expect("temporary folder");
    // SAFETY: set before any other thread exists (the plugin is not loaded yet).
    unsafe {
        std::env::set_var("PIANOFORTE_TRACE_DIR", &trace_dir);
        if options.source == "synthetic" {
            std::env::set_var("PIANOFORTE_SOURCE", "synthetic");
        }
        if options.suite == "no-runtime" {
            std::env::set_var("ORT_DYLIB_PATH", trace_dir.join("missing/libonnxruntime.so"));
        }
        if options.suite == "panic" {
            std::env::set_var("PIANOFORTE_TEST_PANIC", "1.5");
        }
    }
    if !options.plugin.exists() {
        eprintln!("error: {} does not exist; run `cargo xtask bundle pianoforte --release` first", options.plugin.display());
        return ExitCode::FAILURE;
    }
    // These load and unload the library themselves.
    if options.suite == "unload" || options.suite == "unload-child" {
        return unload_suite(&options, &trace_dir);
    }
    let plugin = match host::Plugin::load(&options.plugin) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("loaded {} ({}), source: {}", options.plugin.display(), plugin.id(), options.source);
    let scenarios = match options.suite.as_str() {
        "full" => {
            let mut s = full_suite();
            s.extend(continue_scenarios());
            s.extend(session_suite());
            s.push(output_full_scenario());
            s
        }
        "session" => session_suite(),
        "audio" => Vec::new(),
        "continue" => continue_scenarios(),
        "panic" => vec![panic_scenario()],
        "quick" => quick_suite(),
        "bench" => bench_suite(),
        "density" => vec![density_scenario()],
        "no-runtime" => no_runtime_suite(),
        "state" | "bounce" | "tempo" | "tempo-seeds" | "perform" => Vec::new(),
        other => {
            eprintln!("error: unknown suite {other}");
            return ExitCode::FAILURE;
        }
    };
    let (mut passed, mut failed) = (0, 0);
    if options.suite == "state" || options.suite == "full" {
        println!("\n== plugin state: parameters and remembered settings survive a save and a load");
        match host::state_round_trip(&plugin) {
            Ok(notes) => {
                println!("  {}\n  ok", notes.join(", "));
                passed += 1;
            }
            Err(e) => {
                println!("  ERROR: {e}");
                failed += 1;
            }
        }
        for (name, outcome) in tempo::old_projects(&plugin) {
            if print_outcome(&name, &outcome) { passed += 1 } else { failed += 1 }
        }
    }
    if options.suite == "audio" {
        for (name, outcome) in audio_checks(&plugin, &trace_dir) {
            println!("\n== {name}\n  {}", outcome.as_ref().map_or_else(|e| format!("ERROR: {e}"), |note| format!("{note}\n  ok")));
            if outcome.is_ok() { passed += 1 } else { failed += 1 }
        }
    }
    // The suites made of named checks, each printed as it is judged.
    let model = options.model.as_deref();
    let checks = match options.suite.as_str() {
        "bounce" => bounce::checks(&plugin, &trace_dir),
        "perform" => perform::checks(&plugin, &trace_dir),
        "tempo" => tempo::checks(&plugin, &trace_dir, model),
        "tempo-seeds" => tempo::across_seeds(&plugin, &trace_dir, model),
        _ => Vec::new(),
    };
    for (name, outcome) in checks {
        if print_outcome(&name, &outcome) { passed += 1 } else { failed += 1 }
    }
    if options.suite == "full" || options.suite == "session" {
        let mut outcomes = reproducibility(&plugin, &trace_dir);
        outcomes.extend(audio_checks(&plugin, &trace_dir));
        outcomes.push(("closing the plugin while its engine works returns at once".into(), host::destroy_while_busy(&plugin)));
        for (what, path) in bad_model_files(&trace_dir) {
            let s = scenario(
                &format!("model path: {what}"),
                48_000.0,
                Sizes::Fixed(512),
                vec![seg(4.0, vec![Transport(true)]), seg(0.3, vec![Transport(false)])],
            );
            let outcome = host::run(&plugin, &s, &trace_dir, Some(&path)).and_then(|run| {
                let report = check::check(&run, true, true, 1);
                match (report.errors.first(), report.generated_notes) {
                    (Some(e), _) => Err(e.clone()),
                    (None, 0) => Err("nothing played (the built-in model should)".into()),
                    (None, n) => Ok(format!("refused, the built-in model played {n} notes")),
                }
            });
            outcomes.push((format!("model path: {what}"), outcome));
        }
        for (name, outcome) in outcomes {
            println!("\n== {name}");
            match outcome {
                Ok(note) => {
                    println!("  {note}\n  ok");
                    passed += 1;
                }
                Err(e) => {
                    println!("  ERROR: {e}");
                    failed += 1;
                }
            }
        }
    }
    for scenario in &scenarios {
        println!("\n== {}", scenario.name);
        let run = match host::run(&plugin, scenario, &trace_dir, options.model.as_deref()) {
            Ok(run) => run,
            Err(e) => {
                println!("FAILED: {e}");
                failed += 1;
                continue;
            }
        };
        let strict = scenario.lockstep || scenario.offline;
        let report = check::check(&run, strict, scenario.lockstep, scenario.input_channel as u8);
        let simulated: f64 = scenario.segments.iter().map(|s| s.seconds).sum();
        println!(
            "  {simulated:.0} s simulated in {:.1} s, {} blocks; {} generated notes, {} events exactly at their traced sample, \
             {} cut events; {} NOTE_ONs superseded by a new performance, {} skipped late, {} in a start's first block; lockstep \
             stalls: {}; up to {} notes at once; {} releases late (real time)",
            run.wall_seconds,
            run.blocks,
            report.generated_notes,
            report.matched,
            report.cut_events,
            report.superseded,
            report.missing,
            report.start_latency,
            run.stalls,
            report.max_sounding,
            report.late_releases
        );
        let mut errors = report.errors.clone();
        if scenario.expect_silence {
            if report.generated_notes > 0 {
                errors.push(format!("{} notes without ONNX Runtime", report.generated_notes));
            }
        } else if report.generated_notes == 0 {
            errors.push("the plugin played no notes".into());
        }
        for (label, notes, seconds) in &run.measured {
            println!("  measured {label}: {:.2} notes/s ({notes} notes in {seconds:.1} s)", *notes as f64 / seconds);
        }
        let rate = |label: &str| run.measured.iter().find(|m| m.0 == label).map(|m| m.1 as f64 / m.2);
        if let (Some(low), Some(high)) = (rate("3 notes/s"), rate("16 notes/s")) {
            let responds = high > low * 2.0;
            println!(
                "  density automation {} the measured notes per second ({low:.2} -> {high:.2})",
                if responds { "changes" } else { "does NOT change" }
            );
            if options.require_density && !(responds && (low - 3.0).abs() < 1.5 && (high - 16.0).abs() < 4.0) {
                errors.push(format!("density automation: {low:.2} and {high:.2} notes/s measured for 3 and 16"));
            }
        }
        if let Some(after) = rate("after the musician stopped")
            && after <= 0.0
        {
            errors.push("Continue mode: nothing played after the musician stopped".into());
        }
        if let Some(during) = rate("while the musician plays")
            && during > 0.0
        {
            errors.push(format!("Continue mode: the engine played ({during:.2} notes/s) while the musician played"));
        }
        if scenario.output_limit.is_some() || scenario.name.contains("panic") {
            // Refused or cut events cannot be where the trace put them: what matters is that
            // nothing sticks and the pedal comes up.
            errors.retain(|e| e.contains("stuck") || e.contains("pedal is still down") || e.contains("no notes"));
            if scenario.output_limit.is_some() && run.refused == 0 {
                errors.push("the host refused no event: the scenario tests nothing".into());
            }
            println!("  {} events refused by the host", run.refused);
        }
        if let Some(after) = rate("after the panic")
            && after > 0.0
        {
            errors.push(format!("{after:.2} notes/s after the engine thread panicked"));
        }
        if scenario.speed == 1.0 {
            let sorted = |time: fn(&host::ProcessTime) -> f64| {
                let mut times: Vec<f64> = run.process_times.iter().filter(|p| p.frames > 0).map(time).collect();
                times.sort_by(f64::total_cmp);
                times
            };
            let (times, cpu_times) = (sorted(|p| p.wall), sorted(|p| p.cpu));
            let frames = run.process_times.first().map_or(1, |p| p.frames) as f64;
            let budget = frames / scenario.sample_rate;
            let (median, p99, max) = (percentile(&times, 0.5), percentile(&times, 0.99), times.last().copied().unwrap_or(0.0));
            let process_total: f64 = times.iter().sum();
            println!(
                "  process(): median {:.1} us, p99 {:.1} us, max {:.1} us per {frames:.0}-sample buffer ({:.3}% / {:.3}% / {:.2}% of its {:.2} ms)",
                median * 1e6,
                p99 * 1e6,
                max * 1e6,
                100.0 * median / budget,
                100.0 * p99 / budget,
                100.0 * max / budget,
                budget * 1e3
            );
            let (cpu_median, cpu_p99) = (percentile(&cpu_times, 0.5), percentile(&cpu_times, 0.99));
            println!(
                "  process(), the audio thread's CPU time: median {:.1} us, p99 {:.1} us ({:.3}% / {:.3}%)",
                cpu_median * 1e6,
                cpu_p99 * 1e6,
                100.0 * cpu_median / budget,
                100.0 * cpu_p99 / budget
            );
            println!(
                "  engine thread: {:.2} s CPU in {:.1} s = {:.2}% of one core; process() {:.2}%; whole plugin {:.2}%",
                run.engine_cpu_seconds,
                run.wall_seconds,
                100.0 * run.engine_cpu_seconds / run.wall_seconds,
                100.0 * process_total / run.wall_seconds,
                100.0 * (run.engine_cpu_seconds + process_total) / run.wall_seconds
            );
            println!(
                "  engine thread wake-ups: {:.1} per second over the run ({} context switches)",
                run.engine_switches as f64 / run.wall_seconds,
                run.engine_switches
            );
            println!(
                "  | {frames:.0} | {:.1} | {:.1} | {:.1} | {:.3}% | {:.3}% | {:.2}% | {:.2}% | {:.1} |",
                median * 1e6,
                p99 * 1e6,
                max * 1e6,
                100.0 * p99 / budget,
                100.0 * cpu_p99 / budget,
                100.0 * run.engine_cpu_seconds / run.wall_seconds,
                100.0 * (run.engine_cpu_seconds + process_total) / run.wall_seconds,
                rate("16 notes/s").unwrap_or(0.0)
            );
        }
        if errors.is_empty() {
            println!("  ok");
            passed += 1;
        } else {
            for e in &errors {
                println!("  ERROR: {e}");
            }
            failed += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&trace_dir);
    // Which ONNX Runtime the plugin found (it looks beside its own binary first).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut runtimes: Vec<&str> =
        maps.lines().filter_map(|l| l.split_whitespace().nth(5)).filter(|p| p.contains("libonnxruntime")).collect();
    runtimes.dedup();
    if !runtimes.is_empty() {
        println!("\nONNX Runtime loaded from {}", runtimes.join(", "));
    }
    println!("\nclap host: {passed} passed, {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
