//! What `cargo xtask onnxruntime` and `cargo xtask samples` share: the workspace's `target/`
//! folder (where the bundles go too), the `--force` flag, and a scratch folder for the download
//! that is removed afterwards.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    // xtask/ lives directly in the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent folder").to_path_buf()
}

/// `target/NAME` of the workspace.
pub fn target_folder(name: &str) -> PathBuf {
    workspace_root().join("target").join(name)
}

/// The only flag the fetching commands take: `--force` (fetch again even when present).
pub fn parse_force(command: &str, args: &[String]) -> Result<bool, String> {
    let mut force = false;
    for arg in args {
        match arg.as_str() {
            "--force" => force = true,
            other => return Err(format!("`cargo xtask {command}` takes only --force, got `{other}`")),
        }
    }
    Ok(force)
}

/// Runs `download` in a fresh scratch folder inside `folder` (so the final rename stays on one
/// file system) and removes the scratch folder whatever happened.
pub fn in_scratch_folder(folder: &Path, download: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), String> {
    std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let scratch = folder.join(format!(".download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let result = download(&scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
