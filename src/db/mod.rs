//! The only place that talks SQL. Actors call [`Db::run`] with a closure over a pooled connection; the closure runs on
//! tokio's blocking pool so no arbiter ever waits on PostgreSQL.

pub mod cleanups;
pub mod files;
pub mod models;
pub mod pins;
pub mod schema;
pub mod state;
pub mod stats;

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::DatabaseSettings;

pub use models::*;

/// The migrations in `migrations/`, compiled into the binary and applied at start-up.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A pooled connection, as handed to [`Db::run`] closures.
pub type Conn = PooledConnection<ConnectionManager<PgConnection>>;

/// Why a database call failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot get a PostgreSQL connection: {0}")]
    Pool(String),
    #[error("query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database task was cancelled: {0}")]
    Join(String),
    #[error("{0}")]
    Invalid(String),
}

/// Cheap to clone: a handle to the connection pool.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<PgConnection>>,
}

impl Db {
    /// Builds the pool and checks one connection, so a wrong URL is reported at start-up, not at first use.
    pub fn connect(settings: &DatabaseSettings) -> Result<Self, DbError> {
        let manager = ConnectionManager::<PgConnection>::new(settings.url.clone());
        let pool = Pool::builder()
            .max_size(settings.pool_size)
            .connection_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .build(manager)
            .map_err(|e| DbError::Pool(format!("{e} ({})", crate::config::redact_url(&settings.url))))?;
        Ok(Db { pool })
    }

    /// Runs `f` with a connection on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T, DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| DbError::Pool(e.to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| DbError::Join(e.to_string()))?
    }

    /// Synchronous access for CLI commands that run outside an actor system.
    pub fn conn(&self) -> Result<Conn, DbError> {
        self.pool.get().map_err(|e| DbError::Pool(e.to_string()))
    }

    /// Applies every pending migration; returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.conn()?;
        run_migrations(&mut conn)
    }
}

/// Applies every pending migration on one connection.
pub fn run_migrations(conn: &mut PgConnection) -> Result<Vec<String>, DbError> {
    conn.run_pending_migrations(MIGRATIONS)
        .map(|v| v.iter().map(|m| m.to_string()).collect())
        .map_err(|e| DbError::Migration(e.to_string()))
}

/// Reverts every applied migration (newest first); used by the up-down-up test and by `smanager migrate --down-all`.
pub fn revert_all_migrations(conn: &mut PgConnection) -> Result<Vec<String>, DbError> {
    conn.revert_all_migrations(MIGRATIONS)
        .map(|v| v.iter().map(|m| m.to_string()).collect())
        .map_err(|e| DbError::Migration(e.to_string()))
}
