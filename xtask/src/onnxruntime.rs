//! `cargo xtask onnxruntime`: the ONNX Runtime shared library from the PyPI wheel.
//!
//! The engine loads ONNX Runtime at run time (`ort`'s `load-dynamic`). The official wheel carries
//! the same library the Python trainer uses, so the Rust and Python sides run one runtime version.
//! Steps: `python3 -m pip download --no-deps --only-binary=:all: onnxruntime==ONNXRUNTIME_VERSION` into a
//! temporary folder, then the library member of the wheel (a zip) is unpacked with Python's
//! `zipfile` (pip needs Python anyway, so no zip crate) into `target/onnxruntime/`.

use std::path::Path;
use std::process::Command;

use crate::fetch;

#[path = "../../src/engine/onnxruntime_library.rs"]
mod library;
pub use library::{ONNXRUNTIME_VERSION, library_file_name};

pub fn run(args: &[String]) -> Result<(), String> {
    let force = fetch::parse_force("onnxruntime", args)?;
    let folder = fetch::target_folder("onnxruntime");
    let target = folder.join(library_file_name());
    if target.is_file() && !force {
        println!("{} is already there (pass --force to fetch it again)", target.display());
        return Ok(());
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    fetch::in_scratch_folder(&folder, |temp| download_and_unpack(&python, temp, &target))?;
    println!("wrote {}", target.display());
    println!("the engine finds it there (or set ORT_DYLIB_PATH, or pass --onnxruntime PATH)");
    Ok(())
}

fn download_and_unpack(python: &str, temp: &Path, target: &Path) -> Result<(), String> {
    let spec = format!("onnxruntime=={ONNXRUNTIME_VERSION}");
    println!("downloading the {spec} wheel with `{python} -m pip download` ...");
    let status = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--quiet"])
        .arg("--dest")
        .arg(temp)
        .arg(&spec)
        .status()
        .map_err(|e| format!("cannot run `{python} -m pip` ({e}); install Python 3 with pip, or set PYTHON"))?;
    if !status.success() {
        return Err(format!("`{python} -m pip download {spec}` failed ({status}); is PyPI reachable?"));
    }
    let wheel = std::fs::read_dir(temp)
        .map_err(|e| format!("{}: {e}", temp.display()))?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| format!("pip left no wheel in {}", temp.display()))?;

    // Unpack to a temporary name first, then rename: another process never sees half a library.
    let member = format!("onnxruntime/capi/{}", library_file_name());
    let partial = temp.join(library_file_name());
    let script = "import sys, zipfile, shutil\n\
                  with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n\
                  \x20   shutil.copyfileobj(src, dst)\n";
    let status = Command::new(python)
        .args(["-c", script])
        .arg(&wheel)
        .arg(&member)
        .arg(&partial)
        .status()
        .map_err(|e| format!("cannot run `{python}`: {e}"))?;
    if !status.success() {
        return Err(format!("{} has no member {member}", wheel.display()));
    }
    std::fs::rename(&partial, target).map_err(|e| format!("{}: {e}", target.display()))
}
