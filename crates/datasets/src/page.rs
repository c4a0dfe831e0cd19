//! Keyset pagination: rows are read `PAGE` at a time, ordered by an integer key, so an
//! iterator owns no SQLite statement (no self-borrow) and memory stays bounded.

use std::collections::VecDeque;

use rusqlite::{Connection, Row};

use crate::error::{Result, SqlContext};

/// Rows per page.
pub(crate) const PAGE: i64 = 1000;

/// Enrichment run on each page (e.g. fetch the attachments of its messages in one query).
pub(crate) type Enrich<'a, T> = Box<dyn FnMut(&mut [T]) -> Result<()> + 'a>;

/// A paged query. The SQL takes `?1` = cursor (rows with key > cursor), `?2` = page size and,
/// when `fixed` is set, `?3` = that value (e.g. a chat id).
pub(crate) struct Pager<'a, T> {
    conn: &'a Connection,
    file: String,
    sql: String,
    fixed: Option<i64>,
    cursor: i64,
    buf: VecDeque<T>,
    done: bool,
    map: fn(&Row<'_>) -> T,
    key: fn(&T) -> i64,
    enrich: Option<Enrich<'a, T>>,
}

impl<'a, T> Pager<'a, T> {
    /// A pager over `sql` (see the type docs for its parameters).
    pub(crate) fn new(
        conn: &'a Connection,
        file: &str,
        sql: String,
        fixed: Option<i64>,
        map: fn(&Row<'_>) -> T,
        key: fn(&T) -> i64,
    ) -> Self {
        Pager {
            conn,
            file: file.to_string(),
            sql,
            fixed,
            cursor: i64::MIN,
            buf: VecDeque::new(),
            done: false,
            map,
            key,
            enrich: None,
        }
    }

    /// Adds a per-page enrichment step.
    pub(crate) fn with_enrich(mut self, f: Enrich<'a, T>) -> Self {
        self.enrich = Some(f);
        self
    }

    fn fill(&mut self) -> Result<()> {
        let mut st = self.conn.prepare_cached(&self.sql).db(&self.file)?;
        let map = self.map;
        let mut rows: Vec<T> = match self.fixed {
            Some(f) => st
                .query_map(rusqlite::params![self.cursor, PAGE, f], |r| Ok(map(r)))
                .db(&self.file)?
                .collect::<rusqlite::Result<_>>()
                .db(&self.file)?,
            None => st
                .query_map(rusqlite::params![self.cursor, PAGE], |r| Ok(map(r)))
                .db(&self.file)?
                .collect::<rusqlite::Result<_>>()
                .db(&self.file)?,
        };
        if (rows.len() as i64) < PAGE {
            self.done = true;
        }
        match rows.last() {
            Some(last) => {
                let k = (self.key)(last);
                if k <= self.cursor {
                    // A key that does not grow would loop forever: stop.
                    self.done = true;
                }
                self.cursor = k;
            }
            None => self.done = true,
        }
        if let Some(e) = self.enrich.as_mut() {
            e(&mut rows)?;
        }
        self.buf.extend(rows);
        Ok(())
    }
}

impl<T> Iterator for Pager<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.buf.is_empty()
            && !self.done
            && let Err(e) = self.fill()
        {
            self.done = true;
            self.buf.clear();
            return Some(Err(e));
        }
        self.buf.pop_front().map(Ok)
    }
}

/// `a,b,c` for an `IN (…)` list of integers (integers only: nothing to inject).
pub(crate) fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    ids.into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
