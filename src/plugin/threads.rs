//! The one owner of every thread a plugin instance starts (engine, model loader, piano samples
//! loader, clip writer, drag): each is spawned here and joined in [`Threads::join_all`], which the
//! instance calls when the host drops it. Nothing of ours runs after the host's last call, so a
//! host may unload the library right after.
//!
//! Threads started here must end on their own within a bounded time once [`Threads::stopping`]
//! is true (they poll it, or their work is bounded: a file read, one model step).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

#[derive(Default)]
pub struct Threads {
    handles: Mutex<Vec<JoinHandle<()>>>,
    stopping: AtomicBool,
}

impl Threads {
    /// Starts a named thread owned by this instance. Refused (an error in words) once the instance
    /// is shutting down, or when the system cannot start a thread.
    pub fn spawn(&self, name: &str, run: impl FnOnce() + Send + 'static) -> Result<(), String> {
        let mut handles = self.handles.lock().unwrap_or_else(PoisonError::into_inner);
        if self.stopping() {
            return Err(format!("cannot start {name}: the plugin is closing"));
        }
        // Finished threads are joined as new ones start, so the list stays short.
        let (finished, running): (Vec<_>, Vec<_>) = handles.drain(..).partition(|h| h.is_finished());
        *handles = running;
        for handle in finished {
            let _ = handle.join();
        }
        let handle = std::thread::Builder::new().name(name.into()).spawn(run).map_err(|e| format!("cannot start {name}: {e}"))?;
        handles.push(handle);
        Ok(())
    }

    /// True once the instance is closing: long-running threads end.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Tells every thread to end and joins them all, also those started while joining (a thread
    /// may start another one on its way out; `spawn` refuses new ones from now on).
    pub fn join_all(&self) {
        self.stopping.store(true, Ordering::Release);
        loop {
            let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(PoisonError::into_inner));
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                // A thread's panic is its own report (the engine says it in the editor).
                let _ = handle.join();
            }
        }
    }

    /// Threads started and not joined yet (finished or not).
    pub fn count(&self) -> usize {
        self.handles.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn join_all_waits_for_every_thread_and_refuses_new_ones() {
        let threads = Arc::new(Threads::default());
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..3 {
            let (threads2, done) = (threads.clone(), done.clone());
            threads
                .spawn("test", move || {
                    while !threads2.stopping() {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
        assert_eq!(threads.count(), 3);
        threads.join_all();
        assert_eq!(done.load(Ordering::SeqCst), 3);
        assert_eq!(threads.count(), 0);
        assert!(threads.spawn("late", || {}).is_err());
    }
}
