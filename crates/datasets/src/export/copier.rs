//! Attachment copies on worker threads. An export with thousands of attachments spends most
//! of its time in the kernel creating and filling their files; doing that beside the thread
//! that renders the pages uses the other cores and keeps the pages streaming.
//!
//! The source is opened by the caller (so a missing or unreadable source is known at once and
//! reported where the record is written); a worker creates the destination through
//! [`OutDir::file`] (never following a planted link), copies, and sets the modification time.
//! Failures come back from [`Copier::finish`] and are counted in the export's report. Dropping a
//! `Copier` (an export that failed half-way) stops it and waits for its workers, so no thread
//! writes after the export returned.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::OutDir;
use crate::error::{IoContext, Result};

/// Where the bytes of one copy come from.
pub(crate) enum CopyInput {
    /// A plain backup's data file, opened: copied file to file in the kernel
    /// (`copy_file_range`, a reflink where the filesystem can).
    File(std::fs::File),
    /// A decrypting reader of an encrypted backup's file.
    Reader(Box<dyn Read + Send>),
}

/// One file to write.
pub(crate) struct CopyJob {
    /// The caller's key for the result (e.g. the attachment ROWID).
    pub key: i64,
    /// What to say in an error (e.g. the path inside the backup).
    pub what: String,
    /// Folder to write into.
    pub dir: Arc<OutDir>,
    /// File name inside `dir` (made safe by [`OutDir::file`]).
    pub name: String,
    /// The bytes.
    pub input: CopyInput,
    /// Modification time to set, Unix seconds (ignored when ≤ 0).
    pub mtime: i64,
}

/// The outcome of one job.
pub(crate) struct CopyDone {
    /// [`CopyJob::key`].
    pub key: i64,
    /// [`CopyJob::what`].
    pub what: String,
    /// `Err` with the reason when the file could not be written.
    pub result: Result<()>,
}

/// A small pool of copy workers fed through a bounded queue (a few dozen open sources at most).
pub(crate) struct Copier {
    jobs: Option<SyncSender<CopyJob>>,
    done: Receiver<CopyDone>,
    workers: Vec<JoinHandle<()>>,
}

impl Copier {
    /// Starts `workers` threads (at least one).
    pub fn new(workers: usize) -> Copier {
        let (jobs, queue) = sync_channel::<CopyJob>(64);
        let queue = Arc::new(Mutex::new(queue));
        let (report, done) = channel();
        let workers = (0..workers.max(1))
            .filter_map(|i| {
                let queue = Arc::clone(&queue);
                let report = report.clone();
                std::thread::Builder::new()
                    .name(format!("iosnap-copy-{i}"))
                    .spawn(move || work(&queue, &report))
                    .ok()
            })
            .collect();
        Copier {
            jobs: Some(jobs),
            done,
            workers,
        }
    }

    /// A copier sized for this machine: one worker per core, at least two (the work is mostly
    /// waiting on the kernel), at most four.
    pub fn for_this_machine() -> Copier {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Copier::new(cores.clamp(2, 4))
    }

    /// Queues a copy; blocks while the queue is full. If no worker could be started the copy
    /// is done here.
    pub fn submit(&self, job: CopyJob) -> Option<CopyDone> {
        if self.workers.is_empty() {
            return Some(run(job));
        }
        match &self.jobs {
            Some(tx) => match tx.send(job) {
                Ok(()) => None,
                // Every worker is gone (it cannot happen while `self` lives, but never lose a
                // file over it): copy here.
                Err(e) => Some(run(e.0)),
            },
            None => Some(run(job)),
        }
    }

    /// Waits for every queued copy and returns their outcomes (in completion order).
    pub fn finish(mut self) -> Vec<CopyDone> {
        self.stop();
        self.done.try_iter().collect()
    }

    fn stop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Copier {
    fn drop(&mut self) {
        self.stop();
    }
}

fn work(queue: &Mutex<Receiver<CopyJob>>, report: &std::sync::mpsc::Sender<CopyDone>) {
    loop {
        let job = match queue.lock() {
            Ok(q) => q.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if report.send(run(job)).is_err() {
            return;
        }
    }
}

fn run(job: CopyJob) -> CopyDone {
    let CopyJob {
        key,
        what,
        dir,
        name,
        input,
        mtime,
    } = job;
    CopyDone {
        key,
        what,
        result: copy(&dir, &name, input, mtime),
    }
}

fn copy(dir: &OutDir, name: &str, input: CopyInput, mtime: i64) -> Result<()> {
    let (path, mut w): (PathBuf, _) = dir.file(name)?;
    match input {
        CopyInput::File(mut f) => {
            w.flush().at(&path)?;
            std::io::copy(&mut f, w.get_mut()).at(&path)?;
        }
        CopyInput::Reader(mut r) => {
            std::io::copy(&mut r, &mut w).at(&path)?;
        }
    }
    let f = w.into_inner().map_err(|e| e.into_error()).at(&path)?;
    if mtime > 0 {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime as u64);
        // The copy is what matters; a file system that cannot store the time keeps the copy.
        let _ = f.set_modified(t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &Arc<OutDir>, key: i64, name: &str, bytes: &'static [u8]) -> CopyJob {
        CopyJob {
            key,
            what: name.to_string(),
            dir: Arc::clone(dir),
            name: name.to_string(),
            input: CopyInput::Reader(Box::new(bytes)),
            mtime: 1_700_000_000,
        }
    }

    #[test]
    fn copies_every_job_and_reports_failures() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = Arc::new(OutDir::create(tmp.path()).expect("dir"));
        // A folder where a file should go: that copy must fail, the others succeed.
        std::fs::create_dir(tmp.path().join("blocked")).expect("mkdir");
        let c = Copier::new(3);
        let mut done = Vec::new();
        for i in 0..200 {
            done.extend(c.submit(job(&dir, i, &format!("f{i}"), b"data")));
        }
        done.extend(c.submit(job(&dir, 999, "blocked", b"x")));
        done.extend(c.finish());
        assert_eq!(done.len(), 201);
        for d in &done {
            assert_eq!(d.result.is_err(), d.key == 999, "{}", d.what);
        }
        for i in 0..200 {
            let p = tmp.path().join(format!("f{i}"));
            assert_eq!(std::fs::read(&p).expect("read"), b"data");
            let m = std::fs::metadata(&p)
                .expect("meta")
                .modified()
                .expect("mtime");
            assert_eq!(
                m.duration_since(std::time::UNIX_EPOCH)
                    .expect("after")
                    .as_secs(),
                1_700_000_000
            );
        }
    }

    #[test]
    fn dropping_waits_for_the_workers() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = Arc::new(OutDir::create(tmp.path()).expect("dir"));
        let c = Copier::new(2);
        for i in 0..50 {
            assert!(c.submit(job(&dir, i, &format!("g{i}"), b"abc")).is_none());
        }
        drop(c);
        // Every queued copy was finished before drop returned.
        for i in 0..50 {
            assert_eq!(
                std::fs::read(tmp.path().join(format!("g{i}"))).expect("read"),
                b"abc"
            );
        }
    }
}
