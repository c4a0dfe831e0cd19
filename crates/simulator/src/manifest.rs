//! `Manifest.db` built row by row while a backup runs, as a phone's BackupAgent2 does (it
//! logs "ManifestDB: closing" once the last batch is uploaded), instead of all at once after
//! the last file, which held the host waiting for it.
//!
//! The rows go to a thread at the lowest priority (nice 19): on a machine where the host
//! shares the cores with this simulator, the database is built in the time the transfer
//! leaves idle rather than taken from the host under test.

use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

use iosnap_format::{Entry, ManifestDbWriter};

/// A `Manifest.db` being written on its own thread.
pub(crate) struct ManifestBuilder {
    tx: Option<Sender<Vec<Entry>>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl ManifestBuilder {
    /// Starts writing a new database at `path` (which must not exist).
    pub(crate) fn start(path: PathBuf) -> std::io::Result<ManifestBuilder> {
        let (tx, rx) = channel::<Vec<Entry>>();
        let thread = std::thread::Builder::new()
            .name("sim-manifest".into())
            .spawn(move || {
                // Only this thread; if it cannot be lowered it still works, just less politely.
                let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
                let mut w = ManifestDbWriter::create(&path).map_err(|e| e.to_string())?;
                while let Ok(rows) = rx.recv() {
                    for e in &rows {
                        w.add(e).map_err(|e| e.to_string())?;
                    }
                }
                w.finish().map_err(|e| e.to_string())
            })?;
        Ok(ManifestBuilder {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues finished rows, in order. A failure of the thread shows in [`Self::finish`].
    pub(crate) fn add(&self, rows: Vec<Entry>) {
        if rows.is_empty() {
            return;
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(rows);
        }
    }

    /// Waits for every queued row to be written and the database to be closed (blocking).
    pub(crate) fn finish(mut self) -> Result<(), String> {
        drop(self.tx.take());
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err("the manifest thread panicked".into())),
            None => Err("the manifest thread is gone".into()),
        }
    }
}

impl Drop for ManifestBuilder {
    fn drop(&mut self) {
        // An abandoned backup: let the thread end (its half-built file is in a temp dir).
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iosnap_format::{EntryKind, FileMeta, ManifestDb};

    #[test]
    fn rows_arrive_in_order_and_the_file_is_a_manifest() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("Manifest.db");
        let b = ManifestBuilder::start(path.clone()).unwrap();
        let encoder = iosnap_format::writer::EntryEncoder::new(None);
        for chunk in 0..3 {
            let rows = (0..100)
                .map(|i| {
                    encoder
                        .directory("HomeDomain", &format!("d{chunk}/{i}"), FileMeta::default())
                        .unwrap()
                })
                .collect();
            b.add(rows);
        }
        b.finish().unwrap();
        let db = ManifestDb::open(&path).unwrap();
        let rows = db.entries().unwrap();
        assert!(rows.skipped.is_empty());
        assert_eq!(rows.entries.len(), 300);
        assert_eq!(rows.entries[0].relative_path, "d0/0");
        assert_eq!(rows.entries[299].relative_path, "d2/99");
        assert!(rows.entries.iter().all(|e| e.kind == EntryKind::Directory));
    }
}
