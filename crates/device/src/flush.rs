//! Starting the writeback of finished files on a low-priority thread.
//!
//! A backup is durable only once its data is on the disk ([`crate::store::Txn::commit`] ends
//! with one `syncfs`). So that the commit does not wait for gigabytes at once, the writeback of
//! each new file is started as soon as it is closed. That costs CPU time (ext4 allocates the
//! blocks and builds the requests in the caller): about a sixth of a writer thread's time.
//! Done by the writers themselves it competes with the transfer; here a thread at the lowest
//! priority (nice 19) takes the closed files from a short queue and starts their writeback
//! whenever a core has nothing better to do, which on a busy machine is most of the gaps
//! between the transfer's own work.
//!
//! The queue holds open files, so it is short ([`QUEUE`]); when it is full the writer starts the
//! writeback itself, as before, so the disk never falls further behind than that. Nothing here
//! is needed for correctness: a file whose writeback was never started is written by the
//! commit's `syncfs` all the same.

use std::fs::File;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

/// Closed files waiting for their writeback to start (each holds a file descriptor).
pub(crate) const QUEUE: usize = 512;

/// The writeback thread of one DeviceLink run; dropping it drains the queue and joins it.
pub(crate) struct Flusher {
    tx: Option<SyncSender<File>>,
    thread: Option<JoinHandle<()>>,
}

/// Starts writing a finished file's data back to the disk without waiting for it, so the
/// sync at commit has little left to do. Only a hint: errors are ignored (the sync reports).
pub(crate) fn start_writeback(f: &File) {
    // On Linux, POSIX_FADV_DONTNEED starts asynchronous writeback of the dirty pages (the
    // same WB_SYNC_NONE flush as sync_file_range(SYNC_FILE_RANGE_WRITE)); pages still dirty
    // or under writeback stay cached.
    let _ = rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::DontNeed);
}

impl Flusher {
    /// Starts the thread; `None` where no thread can be started (then writers do it all).
    pub(crate) fn start() -> Option<Flusher> {
        let (tx, rx) = sync_channel::<File>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("iosnap-flush".into())
            .spawn(move || {
                // Only this thread (Linux priorities are per thread); failure just means it
                // runs at normal priority.
                let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
                while let Ok(f) = rx.recv() {
                    start_writeback(&f);
                }
            })
            .ok()?;
        Some(Flusher {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands a closed file over; starts its writeback right here when the queue is full.
    pub(crate) fn submit(&self, f: File) {
        let Some(tx) = &self.tx else {
            return start_writeback(&f);
        };
        match tx.try_send(f) {
            Ok(()) => {}
            Err(TrySendError::Full(f) | TrySendError::Disconnected(f)) => start_writeback(&f),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_submitted_file_is_taken_and_closed() {
        let d = tempfile::tempdir().unwrap();
        let flusher = Flusher::start().unwrap();
        for i in 0..QUEUE * 3 {
            let mut f = File::create(d.path().join(i.to_string())).unwrap();
            f.write_all(b"data").unwrap();
            flusher.submit(f);
        }
        drop(flusher);
        for i in 0..QUEUE * 3 {
            assert_eq!(
                std::fs::read(d.path().join(i.to_string())).unwrap(),
                b"data"
            );
        }
    }
}
