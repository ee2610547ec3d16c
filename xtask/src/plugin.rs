//! `cargo xtask bundle ...` and `cargo xtask install`: the plugin bundles, with ONNX Runtime.
//!
//! `bundle` is nice-plug's bundler (`nice_plug_xtask`, configured by bundler.toml); afterwards the
//! ONNX Runtime library (`cargo xtask onnxruntime` provisions it) is copied beside the plugin
//! binary: into `pianoforte.vst3/Contents/<arch>-linux/` and next to `pianoforte.clap`. The plugin
//! finds it there relative to its own binary.
//!
//! `install` bundles (release) and copies both bundles, with the library, into `~/.clap` and
//! `~/.vst3`.

use std::path::{Path, PathBuf};

use crate::{fetch, onnxruntime, samples};

/// The bundle name (bundler.toml) and the package.
pub const PLUGIN: &str = "pianoforte";

fn bundled_folder() -> PathBuf {
    fetch::target_folder("bundled")
}

/// The VST3 bundle's binary folder for this machine, e.g. `x86_64-linux`.
fn vst3_arch_folder() -> String {
    let os = if cfg!(target_os = "macos") {
        return "MacOS".into();
    } else if cfg!(target_os = "windows") {
        "win"
    } else {
        "linux"
    };
    format!("{}-{os}", std::env::consts::ARCH)
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    // Copy to a temporary name and rename, so a running host never sees half a file.
    let partial = to.with_extension("partial-copy");
    std::fs::copy(from, &partial).map_err(|e| format!("copy {} -> {}: {e}", from.display(), partial.display()))?;
    std::fs::rename(&partial, to).map_err(|e| format!("{}: {e}", to.display()))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            copy(&entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Runs nice-plug's bundler with `args` (the words after `cargo xtask`), then puts the ONNX
/// Runtime library beside the plugin binaries it made.
pub fn bundle(args: &[String]) -> Result<(), String> {
    // The library and the piano samples first: a bundle without them would load but stay silent.
    onnxruntime::run(&[])?;
    samples::run(&[])?;
    // The plugin is a cargo feature of the crate (the command line builds without nice-plug);
    // the bundler passes extra words on to `cargo build`.
    let mut args = args.to_vec();
    if !args.iter().any(|a| a.starts_with("--features")) {
        args.extend(["--features".into(), "plugin".into()]);
    }
    nice_plug_xtask::main_with_args("cargo xtask", args).map_err(|e| format!("{e:#}"))?;
    add_runtime()?;
    add_samples()
}

/// Copies the piano samples (with their credits, CC BY 3.0) beside the CLAP plugin and into the
/// VST3 bundle's Resources, where the plugin looks for them relative to its own binary.
pub fn add_samples() -> Result<(), String> {
    let samples = fetch::target_folder(samples::FOLDER);
    let bundled = bundled_folder();
    if bundled.join(format!("{PLUGIN}.clap")).exists() {
        copy_tree(&samples, &bundled.join(samples::FOLDER))?;
        println!("piano samples beside the CLAP plugin: {}", bundled.join(samples::FOLDER).display());
    }
    let resources = bundled.join(format!("{PLUGIN}.vst3")).join("Contents").join("Resources");
    if resources.parent().is_some_and(Path::is_dir) {
        copy_tree(&samples, &resources.join(samples::FOLDER))?;
        println!("piano samples inside the VST3 bundle: {}", resources.join(samples::FOLDER).display());
    }
    Ok(())
}

/// Copies the ONNX Runtime library into the bundles in target/bundled.
pub fn add_runtime() -> Result<(), String> {
    let library = fetch::target_folder("onnxruntime").join(onnxruntime::library_file_name());
    if !library.is_file() {
        return Err(format!("{} is missing; run `cargo xtask onnxruntime`", library.display()));
    }
    let bundled = bundled_folder();
    let clap = bundled.join(format!("{PLUGIN}.clap"));
    if clap.exists() {
        let to = bundled.join(onnxruntime::library_file_name());
        copy(&library, &to)?;
        println!("ONNX Runtime beside the CLAP plugin: {}", to.display());
    }
    let vst3 = bundled.join(format!("{PLUGIN}.vst3")).join("Contents").join(vst3_arch_folder());
    if vst3.is_dir() {
        let to = vst3.join(onnxruntime::library_file_name());
        copy(&library, &to)?;
        println!("ONNX Runtime inside the VST3 bundle: {}", to.display());
    }
    Ok(())
}

/// `cargo xtask install [--no-bundle]`.
pub fn install(args: &[String]) -> Result<(), String> {
    let mut build = true;
    for arg in args {
        match arg.as_str() {
            "--no-bundle" => build = false,
            other => {
                return Err(format!("`cargo xtask install` takes only --no-bundle, got `{other}`"));
            }
        }
    }
    if build {
        bundle(&["bundle".into(), PLUGIN.into(), "--release".into()])?;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).ok_or("HOME is not set")?;
    let bundled = bundled_folder();
    let library = onnxruntime::library_file_name();

    let clap_dir = home.join(".clap");
    copy(&bundled.join(format!("{PLUGIN}.clap")), &clap_dir.join(format!("{PLUGIN}.clap")))?;
    copy(&bundled.join(&library), &clap_dir.join(&library))?;
    copy_tree(&bundled.join(samples::FOLDER), &clap_dir.join(samples::FOLDER))?;
    println!("installed {}", clap_dir.join(format!("{PLUGIN}.clap")).display());

    let vst3_from = bundled.join(format!("{PLUGIN}.vst3"));
    let vst3_to = home.join(".vst3").join(format!("{PLUGIN}.vst3"));
    if vst3_to.exists() {
        std::fs::remove_dir_all(&vst3_to).map_err(|e| format!("{}: {e}", vst3_to.display()))?;
    }
    copy_tree(&vst3_from, &vst3_to)?;
    println!("installed {}", vst3_to.display());
    println!("rescan plugins in your DAW; pianoforte is an instrument with MIDI output");
    Ok(())
}
