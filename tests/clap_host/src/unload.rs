//! `--suite unload` (issue 18): 50 times in one process, load the library, make an instance,
//! restore a state whose model path names a model file (so a model load is in flight, with the
//! piano samples'), activate, play a few blocks, destroy it and unload the library (dlclose): no
//! crash, and after every destroy the process has the threads it had before the cycles (counted
//! after a first load whose loads were let finish: ONNX Runtime's process-wide environment keeps a
//! thread of its own for the life of the process).
//!
//! The cycles run in a child process (`--suite unload-child`): a crash fails the suite instead of
//! ending the host. (No clip drag is in flight: that needs the editor and an X display.)

use crate::host::Plugin;
use crate::render::{Render, render};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CYCLES: usize = 50;
/// The whole child run, at most.
const CHILD_LIMIT: Duration = Duration::from_secs(300);
/// A thread ends within microseconds of its join; this much grace, no more.
const REAP_GRACE: Duration = Duration::from_millis(20);

/// Runs the cycles in a child process and judges how it ended.
pub fn run_in_child(plugin: &Path, model: &Path) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut child = Command::new(exe)
        .args(["--suite", "unload-child", "--plugin"])
        .arg(plugin)
        .arg("--model")
        .arg(model)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let status = wait_bounded(&mut child)?;
    let output = reader.join().unwrap_or_default();
    let last = output.lines().last().unwrap_or("(no output)").to_string();
    judge_exit(status, &last)
}

fn wait_bounded(child: &mut std::process::Child) -> Result<std::process::ExitStatus, String> {
    let began = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("waiting for the child: {e}"))? {
            return Ok(status);
        }
        if began.elapsed() > CHILD_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the child did not finish {CYCLES} cycles within {} s (a destroy hangs?)", CHILD_LIMIT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn judge_exit(status: std::process::ExitStatus, last: &str) -> Result<String, String> {
    use std::os::unix::process::ExitStatusExt;
    match (status.success(), status.signal()) {
        (true, _) => Ok(last.to_string()),
        (false, Some(signal)) => Err(format!(
            "the process crashed (signal {signal}{}); its last line: {last}",
            if signal == 11 { ", SIGSEGV: code of the unloaded library still running?" } else { "" }
        )),
        (false, None) => Err(last.to_string()),
    }
}

/// In the child: the cycles, with the thread count checked after each.
pub fn cycles(plugin: &Path, model: &Path, trace_dir: &Path) -> Result<String, String> {
    let before = threads().len();
    warm_up(plugin, model, trace_dir).map_err(|e| format!("the first load: {e}"))?;
    let baseline = settled_threads();
    let began = Instant::now();
    let (mut unmapped, mut slowest) = (0, 0.0f64);
    for i in 1..=CYCLES {
        let cycle_began = Instant::now();
        cycle(plugin, model, trace_dir).map_err(|e| format!("cycle {i}: {e}"))?;
        slowest = slowest.max(cycle_began.elapsed().as_secs_f64());
        let left = threads_left(&baseline);
        if !left.is_empty() {
            return Err(format!(
                "cycle {i}: {} threads left after destroy and dlclose (baseline {} threads): {}",
                left.len(),
                baseline.len(),
                left.join(", ")
            ));
        }
        unmapped += usize::from(!mapped(plugin));
    }
    Ok(format!(
        "{CYCLES} cycles in {:.1} s (the slowest {slowest:.2} s), each back to {} threads ({before} before the first load); \
         the library was unmapped after {unmapped} of {CYCLES} dlcloses",
        began.elapsed().as_secs_f64(),
        baseline.len()
    ))
}

/// A first load, play and unload that lets every load finish: ONNX Runtime makes its process-wide
/// environment (with a thread of its own, for the life of the process) at the first model load.
/// The baseline is counted after it.
fn warm_up(path: &Path, model: &Path, trace_dir: &Path) -> Result<(), String> {
    let plugin = Plugin::load(path)?;
    let take = Render { model: Some(model.to_path_buf()), ..Render::fast(512, 0.1).after_loading() };
    render(&plugin, &take, trace_dir)?;
    drop(plugin);
    Ok(())
}

/// This process's threads once their number stays the same for 300 ms (10 s at most).
fn settled_threads() -> Vec<(String, String)> {
    let began = Instant::now();
    let (mut last, mut since) = (threads(), Instant::now());
    while since.elapsed() < Duration::from_millis(300) && began.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
        let now = threads();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

/// Load, instantiate with the model path restored, activate and play 10 blocks right away,
/// deactivate, destroy, unload.
fn cycle(path: &Path, model: &Path, trace_dir: &Path) -> Result<(), String> {
    let plugin = Plugin::load(path)?;
    let take = Render { model: Some(model.to_path_buf()), ..Render::fast(512, 0.1) };
    render(&plugin, &take, trace_dir)?;
    drop(plugin);
    Ok(())
}

/// This process's live threads: (id, name). A thread past the release of its memory map (which
/// is when a join returns) counts as ended, though the kernel may list it a moment longer.
fn threads() -> Vec<(String, String)> {
    let tasks = std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten();
    tasks
        .filter(|t| has_memory_map(&t.path()))
        .map(|t| {
            let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            (t.file_name().to_string_lossy().into_owned(), name.trim().to_string())
        })
        .collect()
}

/// Whether a task's virtual memory size (field 23 of its stat) is not 0.
fn has_memory_map(task: &Path) -> bool {
    let stat = std::fs::read_to_string(task.join("stat")).unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    after_name.split_whitespace().nth(20).is_some_and(|vsize| vsize != "0")
}

/// The threads not in `baseline` ("name (id)"), after a short grace for the kernel to reap them.
fn threads_left(baseline: &[(String, String)]) -> Vec<String> {
    let began = Instant::now();
    loop {
        let now = threads();
        let new: Vec<String> = now.iter().filter(|t| !baseline.contains(t)).map(|(id, name)| format!("{name} ({id})")).collect();
        if (new.is_empty() && now.len() <= baseline.len()) || began.elapsed() > REAP_GRACE {
            return new;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether the library is still mapped into this process.
fn mapped(plugin: &Path) -> bool {
    let path = std::fs::canonicalize(plugin).unwrap_or_else(|_| plugin.to_path_buf());
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines().any(|l| l.ends_with(&*path.to_string_lossy()))
}
