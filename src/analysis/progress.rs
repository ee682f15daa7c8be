//! Which parts of a model are read so far, for a screen drawn while a dump
//! is opened: the dashboard's first screen says, panel by panel, what is
//! read and what is still loading.
//!
//! A process opens one dump for its dashboard; the sink is process-wide and
//! set only around that open (`Watch`). Triage and the crash list, which
//! open many dumps at once, set none: then reporting costs a lock.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::Mutex;

static SINK: Mutex<Option<Sender<&'static str>>> = Mutex::new(None);

/// Says that the part `name` of the model is read ("kernel", "log",
/// "tasks", "backtraces", "diagnosis", …).
pub(crate) fn done(name: &'static str) {
    if let Ok(sink) = SINK.lock() {
        if let Some(tx) = sink.as_ref() {
            let _ = tx.send(name);
        }
    }
}

/// The parts read from now on arrive on `parts` until the `Watch` is dropped.
pub(crate) struct Watch {
    pub(crate) parts: Receiver<&'static str>,
}

impl Watch {
    pub(crate) fn start() -> Watch {
        let (tx, rx) = std::sync::mpsc::channel();
        if let Ok(mut sink) = SINK.lock() {
            *sink = Some(tx);
        }
        Watch { parts: rx }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(mut sink) = SINK.lock() {
            *sink = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_arrive_while_watched_and_not_after() {
        let w = Watch::start();
        done("log");
        done("tasks");
        assert_eq!(w.parts.try_iter().collect::<Vec<_>>(), ["log", "tasks"]);
        drop(w);
        done("zones");
        assert!(SINK.lock().unwrap().is_none());
    }
}
