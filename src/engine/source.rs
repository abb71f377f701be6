//! Where a reader begins its read transactions: the handle's own database, through a trait that
//! lets the write handle first make what it acknowledged visible.
//!
//! A store's writer leaves its last groups in an open write transaction, which it commits (each
//! commit a durable one) a few milliseconds later or as soon as anyone in its process reads; see
//! `engine::writer`. A read-only handle reads the file's commits as they are.
//!
//! Uses `model::error`.

use redb::ReadableDatabase;

use crate::model::error::Result;

/// Something read transactions begin on.
pub(crate) trait ReadSource: Send + Sync {
    /// A read transaction that sees every append this process has acknowledged.
    fn begin_read(&self) -> Result<redb::ReadTransaction>;
}

impl ReadSource for redb::ReadOnlyDatabase {
    fn begin_read(&self) -> Result<redb::ReadTransaction> {
        Ok(ReadableDatabase::begin_read(self)?)
    }
}
