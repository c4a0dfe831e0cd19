//! Schema probing: which tables and columns a database has, checked before any query, so a
//! column that one iOS generation lacks becomes `NULL` instead of failing every row.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::{Result, SqlContext};

/// Tables and their columns, names compared case-insensitively (as SQLite does).
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// lowercase table name → (real name, lowercase column names).
    tables: HashMap<String, (String, Vec<String>)>,
}

/// Quotes an identifier for SQL (`"` doubled), so even a hostile table name cannot inject.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl Schema {
    /// Reads `sqlite_master` and `PRAGMA table_info` of every table.
    pub fn probe(conn: &Connection) -> Result<Schema> {
        let mut names = Vec::new();
        {
            let mut st = conn
                .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
                .db("schema")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0)).db("schema")?;
            for n in rows {
                names.push(n.db("schema")?);
            }
        }
        let mut tables = HashMap::new();
        for name in names {
            let mut st = conn
                .prepare(&format!("PRAGMA table_info({})", quote(&name)))
                .db("schema")?;
            let cols = st
                .query_map([], |r| r.get::<_, String>(1))
                .db("schema")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .db("schema")?;
            tables.insert(
                name.to_ascii_lowercase(),
                (name, cols.iter().map(|c| c.to_ascii_lowercase()).collect()),
            );
        }
        Ok(Schema { tables })
    }

    /// Whether the table (or view) exists.
    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(&table.to_ascii_lowercase())
    }

    /// Whether the table exists and has the column.
    pub fn has_column(&self, table: &str, column: &str) -> bool {
        let c = column.to_ascii_lowercase();
        self.tables
            .get(&table.to_ascii_lowercase())
            .is_some_and(|(_, cols)| cols.contains(&c))
    }

    /// The SQL expression for `alias.column`, or `NULL` when the column does not exist: the
    /// heart of "one missing column must not drop every row".
    pub fn col(&self, table: &str, alias: &str, column: &str) -> String {
        if self.has_column(table, column) {
            format!("{alias}.{}", quote(column))
        } else {
            "NULL".to_string()
        }
    }

    /// Like [`Schema::col`], but a blob longer than `max` bytes is selected as `NULL` (so a
    /// hostile multi-gigabyte blob is never loaded into memory).
    pub fn blob_col(&self, table: &str, alias: &str, column: &str, max: usize) -> String {
        if self.has_column(table, column) {
            let c = format!("{alias}.{}", quote(column));
            format!("(CASE WHEN length({c}) <= {max} THEN {c} END)")
        } else {
            "NULL".to_string()
        }
    }

    /// Real names of every table and view.
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.tables.values().map(|(n, _)| n.as_str())
    }

    /// Lowercase column names of a table (empty when absent).
    pub fn columns(&self, table: &str) -> &[String] {
        self.tables
            .get(&table.to_ascii_lowercase())
            .map(|(_, c)| c.as_slice())
            .unwrap_or_default()
    }

    /// The first of `candidates` that exists as a table (schema generations renaming a table).
    pub fn first_table<'a>(&self, candidates: &[&'a str]) -> Option<&'a str> {
        candidates.iter().copied().find(|t| self.has_table(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_substitutes_null() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE \"we\"\"ird\" (a INTEGER, B TEXT); CREATE TABLE t (x);")
            .unwrap();
        let s = Schema::probe(&c).unwrap();
        assert!(s.has_table("WE\"IRD"));
        assert!(s.has_column("we\"ird", "b"));
        assert!(!s.has_column("we\"ird", "c"));
        assert_eq!(s.col("t", "t", "x"), "t.\"x\"");
        assert_eq!(s.col("t", "t", "nope"), "NULL");
        assert_eq!(s.first_table(&["ZASSET", "t"]), Some("t"));
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
