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
//! suites: full (everything but the benchmark), quick, bench, density, state, no-runtime
//! ```
//!
//! With `--source synthetic` the plugin plays its deterministic test pattern instead of the model
//! (the plugin is re-run in a child process with `PIANOFORTE_SOURCE=synthetic`).

mod check;
mod host;
mod trace;

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
                    "usage: pianoforte-clap-host [--plugin PATH] [--suite full|quick|bench|density|state|no-runtime] [--source model|synthetic] [--require-density] [--model FILE.onnx]"
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
    Scenario { name: name.into(), sample_rate, sizes, segments, lockstep: true, speed: 0.0, expect_silence: false }
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

fn continue_scenario() -> Scenario {
    let mut s = scenario(
        "Continue my playing: input passes through, the engine listens, then continues",
        48_000.0,
        Sizes::Fixed(256),
        vec![
            seg(4.0, vec![Transport(true), Param("Mode", "Continue my playing")]),
            seg(0.4, vec![Note(60, 90, 0.3)]),
            seg(0.4, vec![Note(64, 80, 0.3)]),
            seg(0.4, vec![Note(67, 70, 0.3)]),
            measured("after the musician stopped", 6.0, vec![]),
            seg(1.0, vec![Transport(false)]),
        ],
    );
    s.lockstep = false;
    s.speed = 8.0;
    s
}

fn bench_suite() -> Vec<Scenario> {
    [64u32, 512]
        .into_iter()
        .map(|buffer| Scenario {
            name: format!("benchmark: 48 kHz, {buffer}-sample buffers, 16 notes/s, real time"),
            sample_rate: 48_000.0,
            sizes: Sizes::Fixed(buffer),
            segments: vec![measured("16 notes/s", 30.0, vec![Transport(true), Param("Density", "16")]), seg(0.5, vec![Transport(false)])],
            lockstep: false,
            speed: 1.0,
            expect_silence: false,
        })
        .collect()
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
    }
    if !options.plugin.exists() {
        eprintln!("error: {} does not exist; run `cargo xtask bundle pianoforte --release` first", options.plugin.display());
        return ExitCode::FAILURE;
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
            s.push(continue_scenario());
            s
        }
        "quick" => quick_suite(),
        "bench" => bench_suite(),
        "density" => vec![density_scenario()],
        "no-runtime" => no_runtime_suite(),
        "state" => Vec::new(),
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
        let report = check::check(&run, scenario.lockstep);
        let simulated: f64 = scenario.segments.iter().map(|s| s.seconds).sum();
        println!(
            "  {simulated:.0} s simulated in {:.1} s, {} blocks; {} generated notes, {} events exactly at their traced sample, \
             {} cut events; {} NOTE_ONs superseded by a new performance, {} skipped late; lockstep stalls: {}; up to {} notes at once",
            run.wall_seconds,
            run.blocks,
            report.generated_notes,
            report.matched,
            report.cut_events,
            report.superseded,
            report.missing,
            run.stalls,
            report.max_sounding
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
        if scenario.speed == 1.0 {
            let mut times: Vec<f64> = run.process_times.iter().filter(|(_, n)| *n > 0).map(|(t, _)| *t).collect();
            times.sort_by(f64::total_cmp);
            let frames = run.process_times.first().map_or(1, |p| p.1) as f64;
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
            println!(
                "  engine thread: {:.2} s CPU in {:.1} s = {:.2}% of one core; process() {:.2}%; whole plugin {:.2}%",
                run.engine_cpu_seconds,
                run.wall_seconds,
                100.0 * run.engine_cpu_seconds / run.wall_seconds,
                100.0 * process_total / run.wall_seconds,
                100.0 * (run.engine_cpu_seconds + process_total) / run.wall_seconds
            );
            println!(
                "  | {frames:.0} | {:.1} | {:.1} | {:.1} | {:.3}% | {:.2}% | {:.2}% | {:.1} |",
                median * 1e6,
                p99 * 1e6,
                max * 1e6,
                100.0 * p99 / budget,
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
