//! The write side of a backup on its own threads, so that file creation and the copies into
//! the page cache run on the second core while the DeviceLink loop keeps reading the socket.
//!
//! The loop ([`crate::devicelink`]) parses the phone's upload stream and hands every file to a
//! writer thread in pieces ([`Pipeline::start_file`], [`Pipeline::send`]). Rules that keep the
//! guarantees of [`Txn`] intact:
//!
//! - **Order per path.** A file always goes to the writer chosen by its (lexically normalised)
//!   path, and each writer works strictly in order, so a path uploaded twice ends with the
//!   later content. Every other DeviceLink request (move, remove, copy, create directory,
//!   download, listing) and the end of the operation first wait for the writers to drain
//!   ([`Pipeline::barrier`]), so they see every earlier upload in place.
//! - **Bounded memory.** File data travels in buffers of [`CHUNK`] bytes; a buffer is only
//!   handed out against [`MEMORY_BUDGET`] worth of permits, returned when the writer is done
//!   with it. The loop waits (and stops reading the socket) when the writers fall behind.
//! - **Errors stop the backup.** The first writer error is kept and returned by the next
//!   [`Pipeline::start_file`], [`Pipeline::send`] or [`Pipeline::barrier`]; from then on the
//!   writers discard everything. The transaction goes back to its owner only after the writer
//!   threads have been joined (also when the loop is dropped half-way), so a rollback never
//!   races a writer.
//! - An upload message is answered once its bytes are received, not once they are written:
//!   a write that fails later fails the whole backup at the next request (as a failed write
//!   did before, when the loop dropped the connection without answering), and nothing of it
//!   is kept.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::error::{Error, Result};
use crate::flush::Flusher;
use crate::store::{PathRules, PendingFile, Txn};

/// Writer threads. Two: with the socket reader that makes one thread per core on a small
/// machine, and file creation of two writers overlaps with each other's page-cache copies.
pub(crate) const WRITERS: usize = 2;
/// Bytes of one data buffer handed to a writer (and the most one `write` call receives).
pub(crate) const CHUNK: usize = 256 * 1024;
/// Upper bound of the file data between the socket and the writers.
pub(crate) const MEMORY_BUDGET: usize = 8 * 1024 * 1024;
/// When the budget runs out, the reader waits until this much of it is free again.
const REFILL: usize = MEMORY_BUDGET / 4;
/// Jobs queued per writer (their data is bounded by [`MEMORY_BUDGET`]).
const QUEUE: usize = 1024;
/// Temp files (replacing an existing file) a writer gathers before one sync and their renames.
const COMMIT_BATCH: usize = 256;

/// A data buffer with its share of the memory budget.
#[derive(Debug)]
pub(crate) struct Chunk {
    data: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl Chunk {
    /// The bytes gathered so far; append with [`Chunk::data_mut`].
    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    /// The buffer, to read socket data into (its capacity is [`CHUNK`]).
    pub(crate) fn data_mut(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }
}

/// What a writer is asked to do.
enum Job {
    /// A piece of one file: `start` opens a new file at that path (already checked
    /// lexically; `rel` is the phone's name for errors), then `data` is appended, then `end`
    /// finishes it (`Some(true)`: keep it, `Some(false)`: drop it).
    Piece {
        start: Option<(String, PathBuf)>,
        data: Option<Chunk>,
        end: Option<bool>,
    },
    /// Finish every pending rename, then answer.
    Flush(oneshot::Sender<()>),
}

/// State shared by the loop and the writers.
struct Shared {
    txn: Mutex<Txn>,
    /// The first writer error until it is reported; `failed` stays set afterwards.
    error: Mutex<Option<Error>>,
    failed: AtomicBool,
    abort: AtomicBool,
    pool: Mutex<Vec<Vec<u8>>>,
    /// Starts the writeback of closed files on a low-priority thread ([`crate::flush`]), from
    /// the first file on (a restore or a listing never starts it).
    flusher: std::sync::OnceLock<Option<Flusher>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A writer that panicked must not take the rollback down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn fail(&self, e: Error) {
        if !self.failed.swap(true, Ordering::SeqCst) {
            *lock(&self.error) = Some(e);
        }
    }

    fn recycle(&self, chunk: Chunk) {
        let Chunk { mut data, _permit } = chunk;
        data.clear();
        let mut pool = lock(&self.pool);
        if pool.len() < MEMORY_BUDGET / CHUNK {
            pool.push(data);
        }
    }
}

struct Writer {
    tx: mpsc::Sender<Job>,
    thread: Option<JoinHandle<()>>,
}

/// The transaction of one DeviceLink run, lent to the writer threads (see the module docs).
pub(crate) struct Pipeline<'a> {
    home: &'a mut Txn,
    shared: Arc<Shared>,
    rules: PathRules,
    budget: Arc<Semaphore>,
    writers: Vec<Writer>,
    /// Writer of the file being received, and its path until its first piece is sent.
    current: Option<(usize, Option<(String, PathBuf)>)>,
    /// The transaction is back in `home`.
    returned: bool,
    /// No job was handed to a writer since the last [`Pipeline::barrier`]: the next one has
    /// nothing to wait for (a backup's 256 `CreateDirectory` requests in a row).
    settled: bool,
}

impl<'a> Pipeline<'a> {
    /// Takes over `txn` until the pipeline is finished or dropped; no thread is started
    /// before the first upload.
    pub(crate) fn lend(txn: &'a mut Txn) -> Pipeline<'a> {
        let rules = txn.path_rules();
        let inner = std::mem::replace(txn, Txn::placeholder());
        Pipeline {
            home: txn,
            shared: Arc::new(Shared {
                txn: Mutex::new(inner),
                error: Mutex::new(None),
                failed: AtomicBool::new(false),
                abort: AtomicBool::new(false),
                pool: Mutex::new(Vec::new()),
                flusher: std::sync::OnceLock::new(),
            }),
            rules,
            budget: Arc::new(Semaphore::new(MEMORY_BUDGET)),
            writers: Vec::new(),
            settled: true,
            current: None,
            returned: false,
        }
    }

    /// Runs `f` on the transaction. Call [`Pipeline::barrier`] first when `f` touches paths
    /// an upload may have written.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Txn) -> T) -> T {
        f(&mut lock(&self.shared.txn))
    }

    /// The folder the transaction works in.
    pub(crate) fn root(&self) -> &Path {
        self.rules.root()
    }

    /// The first writer error, if any (it stays the answer of every later call).
    fn check(&self) -> Result<()> {
        if !self.shared.failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        Err(lock(&self.shared.error).take().unwrap_or_else(|| {
            Error::io(
                self.rules.root(),
                std::io::Error::other("an earlier write of this operation failed"),
            )
        }))
    }

    fn start_writers(&mut self) -> Result<()> {
        if !self.writers.is_empty() {
            return Ok(());
        }
        for i in 0..WRITERS {
            let (tx, rx) = mpsc::channel(QUEUE);
            let shared = self.shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("iosnap-writer-{i}"))
                .spawn(move || writer(rx, &shared))
                .map_err(|e| Error::io(self.rules.root(), e))?;
            self.writers.push(Writer {
                tx,
                thread: Some(thread),
            });
        }
        Ok(())
    }

    /// Begins a file the phone uploads as `rel`. Unsafe names are refused here, before any
    /// of its data is read; the symbolic-link checks run in the writer.
    pub(crate) fn start_file(&mut self, rel: &str) -> Result<()> {
        self.check()?;
        let path = self.rules.lexical(rel)?;
        self.start_writers()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut h);
        let idx = (h.finish() % self.writers.len().max(1) as u64) as usize;
        self.current = Some((idx, Some((rel.to_string(), path))));
        Ok(())
    }

    /// An empty buffer of [`CHUNK`] bytes' capacity, once the memory budget allows it.
    pub(crate) async fn buffer(&self) -> Result<Chunk> {
        let stopped = || Error::io(self.rules.root(), std::io::Error::other("writers stopped"));
        let permit = match self.budget.clone().try_acquire_many_owned(CHUNK as u32) {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(stopped()),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                // The writers are behind: wait until they have caught up by a quarter of the
                // budget, not by one buffer. One wake-up of this thread per quarter instead
                // of one per buffer the writers give back; meanwhile they work undisturbed.
                drop(
                    self.budget
                        .acquire_many(REFILL as u32)
                        .await
                        .map_err(|_| stopped())?,
                );
                self.budget
                    .clone()
                    .acquire_many_owned(CHUNK as u32)
                    .await
                    .map_err(|_| stopped())?
            }
        };
        let data = lock(&self.shared.pool)
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK));
        Ok(Chunk {
            data,
            _permit: permit,
        })
    }

    /// Hands `data` of the current file to its writer; `end` finishes the file (`true`:
    /// complete, keep it; `false`: drop it).
    pub(crate) async fn send(&mut self, data: Option<Chunk>, end: Option<bool>) -> Result<()> {
        self.check()?;
        let Some((idx, start)) = self.current.as_mut() else {
            return Err(Error::protocol("upload", "file data outside a file"));
        };
        let idx = *idx;
        let job = Job::Piece {
            start: start.take(),
            data,
            end,
        };
        if end.is_some() {
            self.current = None;
        }
        self.settled = false;
        let tx = self.writers.get(idx).map(|w| w.tx.clone());
        match tx {
            Some(tx) if tx.send(job).await.is_ok() => Ok(()),
            _ => {
                self.check()?;
                Err(Error::io(
                    self.rules.root(),
                    std::io::Error::other("a writer thread stopped"),
                ))
            }
        }
    }

    /// Waits until every writer has written, closed and renamed everything handed to it, then
    /// reports the first writer error.
    pub(crate) async fn barrier(&mut self) -> Result<()> {
        if self.settled {
            return self.check();
        }
        let mut waits = Vec::new();
        for w in &self.writers {
            let (tx, rx) = oneshot::channel();
            if w.tx.send(Job::Flush(tx)).await.is_ok() {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = rx.await;
        }
        self.settled = true;
        self.check()
    }

    /// Drains and stops the writers, gives the transaction back, and reports the first writer
    /// error.
    pub(crate) async fn finish(mut self) -> Result<()> {
        self.barrier().await?;
        self.stop();
        self.check()
    }

    /// Joins the writers (telling them to discard their work unless everything was flushed)
    /// and puts the transaction back where it was borrowed from.
    fn stop(&mut self) {
        let writers = std::mem::take(&mut self.writers);
        let (senders, threads): (Vec<_>, Vec<_>) =
            writers.into_iter().map(|w| (w.tx, w.thread)).unzip();
        drop(senders);
        for t in threads.into_iter().flatten() {
            if t.join().is_err() {
                self.shared.fail(Error::io(
                    self.rules.root(),
                    std::io::Error::other("a writer thread panicked"),
                ));
            }
        }
        if !self.returned {
            let txn = std::mem::replace(&mut *lock(&self.shared.txn), Txn::placeholder());
            *self.home = txn;
            self.returned = true;
        }
    }
}

impl Drop for Pipeline<'_> {
    fn drop(&mut self) {
        // Dropped before `finish` (an error or a cancelled loop): the work still queued is
        // abandoned; the owner rolls the transaction back.
        self.shared.abort.store(true, Ordering::SeqCst);
        self.stop();
    }
}

/// One writer thread: applies its jobs in order until the loop hangs up.
fn writer(mut rx: mpsc::Receiver<Job>, shared: &Shared) {
    let mut current: Option<PendingFile> = None;
    let mut temps: Vec<PendingFile> = Vec::new();
    let mut broken = false;
    while let Some(job) = rx.blocking_recv() {
        if shared.abort.load(Ordering::SeqCst) {
            broken = true;
        }
        match job {
            Job::Flush(done) => {
                if !broken && let Err(e) = commit_temps(shared, &mut temps) {
                    shared.fail(e);
                    broken = true;
                }
                let _ = done.send(());
            }
            Job::Piece { start, data, end } => {
                if !broken
                    && let Err(e) = piece(shared, &mut current, &mut temps, start, &data, end)
                {
                    shared.fail(e);
                    broken = true;
                }
                if let Some(d) = data {
                    shared.recycle(d);
                }
            }
        }
        if broken {
            // Unfinished files disappear (their drop removes them); the rollback does the rest.
            current = None;
            temps.clear();
        }
    }
}

fn piece(
    shared: &Shared,
    current: &mut Option<PendingFile>,
    temps: &mut Vec<PendingFile>,
    start: Option<(String, PathBuf)>,
    data: &Option<Chunk>,
    end: Option<bool>,
) -> Result<()> {
    if let Some((rel, _)) = start {
        let plan = {
            let mut t = lock(&shared.txn);
            // `plan_file` looks at the name itself (and never follows it).
            let dst = t.resolve_name(&rel)?;
            t.plan_file(&dst)?
        };
        // Creating the inode is the expensive part; it needs no transaction state.
        *current = Some(plan.open()?);
    }
    let Some(file) = current.as_mut() else {
        return Err(Error::protocol("upload", "file data outside a file"));
    };
    if let Some(d) = data
        && !d.data.is_empty()
    {
        file.write_all(&d.data)?;
    }
    match end {
        None => {}
        Some(false) => *current = None,
        Some(true) => {
            if let Some(f) = current.take() {
                if f.is_direct() {
                    f.close_direct(|file| match shared.flusher.get_or_init(Flusher::start) {
                        Some(flusher) => flusher.submit(file),
                        None => crate::flush::start_writeback(&file),
                    });
                    lock(&shared.txn).note_unsynced();
                } else {
                    temps.push(f);
                    if temps.len() >= COMMIT_BATCH {
                        commit_temps(shared, temps)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn commit_temps(shared: &Shared, temps: &mut Vec<PendingFile>) -> Result<()> {
    if temps.is_empty() {
        return Ok(());
    }
    lock(&shared.txn).commit_files(std::mem::take(temps))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::fs;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("bk");
        fs::create_dir_all(root.join("U/00")).unwrap();
        fs::write(root.join("U/00/old"), b"old content").unwrap();
        (d, root)
    }

    async fn put(p: &mut Pipeline<'_>, rel: &str, content: &[u8]) -> Result<()> {
        p.start_file(rel)?;
        let mut pieces = content.chunks(CHUNK).peekable();
        if pieces.peek().is_none() {
            return p.send(None, Some(true)).await;
        }
        while let Some(piece) = pieces.next() {
            let mut c = p.buffer().await?;
            c.data_mut().extend_from_slice(piece);
            let end = pieces.peek().is_none().then_some(true);
            p.send(Some(c), end).await?;
        }
        Ok(())
    }

    fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for e in walk(root) {
            let rel = e.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let data = if e.is_file() {
                fs::read(&e).unwrap()
            } else {
                Vec::new()
            };
            out.push((rel, data));
        }
        out.sort();
        out
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
        out
    }

    #[tokio::test]
    async fn same_path_twice_keeps_the_later_content_and_old_inodes_stay() {
        let (_d, root) = setup();
        let shared_link = root.join("store-link");
        fs::hard_link(root.join("U/00/old"), &shared_link).unwrap();
        let mut txn = Txn::begin(&root, &["U"]).unwrap();
        {
            let mut p = Pipeline::lend(&mut txn);
            let big: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
            for round in 0..3u8 {
                put(&mut p, "U/00/twice", &[round; 5]).await.unwrap();
                put(&mut p, &format!("U/{round:02x}/big"), &big)
                    .await
                    .unwrap();
            }
            put(&mut p, "U/00/old", b"new content").await.unwrap();
            put(&mut p, "U/./00/empty", b"").await.unwrap();
            p.finish().await.unwrap();
        }
        txn.commit().unwrap();
        assert_eq!(fs::read(root.join("U/00/twice")).unwrap(), [2u8; 5]);
        assert_eq!(
            fs::read(root.join("U/02/big")).unwrap().len(),
            3 * CHUNK + 17
        );
        assert_eq!(fs::read(root.join("U/00/old")).unwrap(), b"new content");
        assert_eq!(fs::read(&shared_link).unwrap(), b"old content");
        assert_eq!(fs::read(root.join("U/00/empty")).unwrap(), b"");
        assert!(
            tree(&root).iter().all(|(n, _)| !n.contains(".iosnap-")),
            "{:?}",
            tree(&root)
        );
    }

    #[tokio::test]
    async fn a_writer_error_stops_the_run_and_rollback_restores_the_folder() {
        let (_d, root) = setup();
        // A file where the phone expects a directory: creating U/blocker/x must fail.
        fs::write(root.join("U/blocker"), b"not a directory").unwrap();
        let before = tree(&root);
        let mut txn = Txn::begin(&root, &["U"]).unwrap();
        {
            let mut p = Pipeline::lend(&mut txn);
            put(&mut p, "U/00/a", b"aaa").await.unwrap();
            put(&mut p, "U/00/old", b"replaced").await.unwrap();
            // The failing file is handed over fine; the error surfaces at the next sync point.
            let _ = put(&mut p, "U/blocker/x", b"x").await;
            let err = p.barrier().await.unwrap_err();
            assert!(matches!(err, Error::Io { .. }), "{err}");
            // Every later call reports it too, without touching the folder.
            assert!(put(&mut p, "U/00/b", b"b").await.is_err());
            assert!(p.finish().await.is_err());
        }
        assert!(txn.rollback().is_empty());
        assert_eq!(tree(&root), before);
    }

    #[tokio::test]
    async fn a_dropped_pipeline_returns_the_transaction_for_rollback() {
        let (_d, root) = setup();
        let before = tree(&root);
        let mut txn = Txn::begin(&root, &["U"]).unwrap();
        {
            let mut p = Pipeline::lend(&mut txn);
            put(&mut p, "U/00/a", b"aaa").await.unwrap();
            put(&mut p, "U/new/deep/b", &vec![7u8; CHUNK * 2])
                .await
                .unwrap();
            p.start_file("U/00/half").unwrap();
            let mut c = p.buffer().await.unwrap();
            c.data_mut().extend_from_slice(b"half a file");
            p.send(Some(c), None).await.unwrap();
            // Dropped mid-file, as when the phone disconnects.
        }
        assert!(txn.rollback().is_empty());
        assert_eq!(tree(&root), before);
    }

    #[tokio::test]
    async fn unsafe_names_are_refused_before_any_data() {
        let (d, root) = setup();
        let outside = d.path().join("outside");
        fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("U/link")).unwrap();
        let mut txn = Txn::begin(&root, &["U"]).unwrap();
        {
            let mut p = Pipeline::lend(&mut txn);
            for bad in ["U/../x", "/etc/passwd", "OTHER/x", "U/.iosnap-txn-1/x"] {
                assert!(
                    matches!(p.start_file(bad), Err(Error::UnsafePath { .. })),
                    "{bad}"
                );
            }
            // Symbolic links are found by the writer.
            put(&mut p, "U/link/x", b"x").await.unwrap();
            assert!(matches!(p.barrier().await, Err(Error::UnsafePath { .. })));
        }
        assert!(txn.rollback().is_empty());
        assert!(!outside.join("x").exists());
    }

    #[tokio::test]
    async fn memory_is_bounded_by_the_budget() {
        let (_d, root) = setup();
        let mut txn = Txn::begin(&root, &["U"]).unwrap();
        {
            let p = Pipeline::lend(&mut txn);
            let mut held = Vec::new();
            for _ in 0..MEMORY_BUDGET / CHUNK {
                held.push(p.buffer().now_or_never().unwrap().unwrap());
            }
            // The budget is spent: the next buffer waits until one comes back.
            assert!(p.buffer().now_or_never().is_none());
            held.pop();
            assert!(p.buffer().now_or_never().is_some());
        }
        assert!(txn.rollback().is_empty());
    }
}
