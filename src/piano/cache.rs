//! The process-wide piano samples: every plugin instance in a host shares one [`SampleSet`]
//! while any of them holds it, and an instance that asks while another loads waits for that
//! load instead of reading the samples twice.

use super::{LoadError, SampleSet, locate};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};

static SHARED: Mutex<Weak<SampleSet>> = Mutex::new(Weak::new());

/// The samples of this process: the set some instance holds, or a fresh load from the first of
/// `candidates` that has them. Blocks while another load runs (call it off the audio thread).
pub fn shared_samples(candidates: &[PathBuf]) -> Result<Arc<SampleSet>, LoadError> {
    let mut cached = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(set) = cached.upgrade() {
        return Ok(set);
    }
    let set = Arc::new(SampleSet::load(&locate(candidates)?)?);
    *cached = Arc::downgrade(&set);
    Ok(set)
}
