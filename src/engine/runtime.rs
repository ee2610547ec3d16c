//! Finding and loading the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`: nothing is linked at build time, and the library is opened
//! when the first model is loaded. `ort` itself panics when it cannot find a library, so the path
//! is always looked up here first and a missing library is reported in words.
//!
//! Lookup order (the first that exists wins):
//! 1. an explicit path (`--onnxruntime PATH`; a file, or a folder holding the library);
//! 2. the `ORT_DYLIB_PATH` environment variable;
//! 3. next to the running binary (`std::env::current_exe()`'s folder);
//! 4. folders the caller adds (the plugin adds its bundle's folder);
//! 5. `target/onnxruntime/` of this source tree (where `cargo xtask onnxruntime` puts it; the path is
//!    fixed at build time, so it only helps binaries run from the tree they were built in).
//!
//! A library is loaded once per process; later requests for another path get the loaded one
//! ([`loaded_library`] says which).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

pub use crate::engine::onnxruntime_library::{ONNXRUNTIME_VERSION, library_file_name};

/// Where `cargo xtask onnxruntime` unpacks the library, fixed when this crate is built.
pub const TARGET_FOLDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/onnxruntime");

/// Other names the library is found under in a folder (a system install, a renamed copy).
fn alternative_names() -> &'static [&'static str] {
    if cfg!(target_os = "windows") {
        &[]
    } else if cfg!(target_os = "macos") {
        &["libonnxruntime.dylib"]
    } else {
        &["libonnxruntime.so", "libonnxruntime.so.1"]
    }
}

/// Where to look for the library, besides the environment and the defaults.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// An explicit library file (or a folder holding it); when given it must exist.
    pub library: Option<PathBuf>,
    /// Extra folders searched after the running binary's own (e.g. a plugin bundle).
    pub search_folders: Vec<PathBuf>,
}

/// Why ONNX Runtime could not be made ready.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeError {
    /// No library in any of the places looked at.
    NotFound { tried: Vec<PathBuf> },
    /// An explicitly named library (option or ORT_DYLIB_PATH) does not exist.
    Missing { path: PathBuf, from: &'static str },
    /// The library exists but could not be loaded or initialised.
    Load { path: PathBuf, message: String },
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fix = format!(
            "run `cargo xtask onnxruntime` in the pianoforte source tree (it fetches onnxruntime {ONNXRUNTIME_VERSION} \
             from PyPI into target/onnxruntime/), or point --onnxruntime PATH or ORT_DYLIB_PATH at {}",
            library_file_name()
        );
        match self {
            RuntimeError::NotFound { tried } => {
                write!(f, "the ONNX Runtime library was not found; {fix}. Looked at:")?;
                for path in tried {
                    write!(f, "\n  {}", path.display())?;
                }
                Ok(())
            }
            RuntimeError::Missing { path, from } => {
                write!(f, "the ONNX Runtime library given by {from} does not exist: {}; {fix}", path.display())
            }
            RuntimeError::Load { path, message } => {
                write!(f, "cannot load the ONNX Runtime library {}: {message}; {fix}", path.display())
            }
        }
    }
}

impl std::error::Error for RuntimeError {}

/// The file inside `path` if it is a folder holding the library, else `path` itself.
fn resolve_explicit(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        find_in(path, &mut Vec::new())
    } else if path.is_file() {
        Some(path.to_path_buf())
    } else {
        None
    }
}

fn find_in(folder: &Path, tried: &mut Vec<PathBuf>) -> Option<PathBuf> {
    let mut names = vec![library_file_name()];
    names.extend(alternative_names().iter().map(|s| s.to_string()));
    for name in names {
        let candidate = folder.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
        tried.push(candidate);
    }
    None
}

/// Finds the library following the lookup order in the module documentation.
pub fn locate(options: &RuntimeOptions) -> Result<PathBuf, RuntimeError> {
    if let Some(path) = &options.library {
        return resolve_explicit(path).ok_or(RuntimeError::Missing { path: path.clone(), from: "--onnxruntime" });
    }
    if let Some(value) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        return resolve_explicit(&path).ok_or(RuntimeError::Missing { path, from: "ORT_DYLIB_PATH" });
    }
    let mut tried = Vec::new();
    let mut folders = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
        folders.push(dir);
    }
    folders.extend(options.search_folders.iter().cloned());
    folders.push(PathBuf::from(TARGET_FOLDER));
    for folder in folders {
        if let Some(found) = find_in(&folder, &mut tried) {
            return Ok(found);
        }
    }
    Err(RuntimeError::NotFound { tried })
}

struct Loaded {
    path: PathBuf,
    environment: ort::environment::Environment,
}

static LOADED: OnceLock<Loaded> = OnceLock::new();
static LOADING: Mutex<()> = Mutex::new(());

/// The library this process has loaded, if any.
pub fn loaded_library() -> Option<&'static Path> {
    LOADED.get().map(|l| l.path.as_path())
}

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment(options: &RuntimeOptions) -> Result<&'static ort::environment::Environment, RuntimeError> {
    if let Some(loaded) = LOADED.get() {
        return Ok(&loaded.environment);
    }
    let _guard = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(loaded) = LOADED.get() {
        return Ok(&loaded.environment);
    }
    let path = locate(options)?;
    let load_error = |message: String| RuntimeError::Load { path: path.clone(), message };
    let builder = ort::init_from(&path).map_err(|e| load_error(e.to_string()))?;
    let environment = builder.with_name("pianoforte").build().map_err(|e| load_error(e.to_string()))?;
    let loaded = LOADED.get_or_init(|| Loaded { path, environment });
    Ok(&loaded.environment)
}
