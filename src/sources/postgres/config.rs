//! `[source] type = "postgres"` in a pipeline file, and what `export`'s flags turn into: which
//! database, which models, in which order.

use serde::Deserialize;

use super::{PostgresSource, PostgresSourceOptions};
use crate::catalog::Naming;
use crate::error::Result;
use crate::pg::{ConnectionOverrides, ConnectionSettings};

/// A PostgreSQL source as configured.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSourceConfig {
    /// Connection URL; default: `DATABASE_URL`, else the `PG*` and `POSTGRES_*` variables (the
    /// parts a URL leaves out come from the `PG*` variables, as in libpq).
    pub url: Option<crate::text::Secret>,
    /// Schemas to read (default `["public"]`).
    #[serde(default, alias = "schema")]
    pub schemas: Vec<String>,
    /// `cityforge` or `auto` (default: detected).
    pub naming: Option<Naming>,
    /// Only these models.
    pub include: Option<Vec<String>>,
    /// Not these models.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Rows ordered by primary key.
    #[serde(default)]
    pub sort: bool,
    /// Connections reading at once from the one snapshot (default: [`default_jobs`]); 1 reads
    /// everything on one connection.
    pub jobs: Option<usize>,
    /// Pages of a piece of a big table read in parallel (default [`super::PIECE_PAGES`]): a
    /// tuning knob for tests and benchmarks, not in pipeline files.
    #[serde(skip)]
    pub piece_pages: Option<u64>,
    /// Connection parts given as flags (`-h -p -U -d`), which win over the URL; a pipeline file
    /// has none.
    #[serde(skip)]
    pub overrides: ConnectionOverrides,
}

/// The most connections a source reads with.
pub const MAX_JOBS: usize = 64;

impl PostgresSourceConfig {
    /// What is wrong with the settings themselves, before connecting.
    pub fn validate(&self) -> Option<String> {
        match self.jobs {
            Some(jobs) if !(1..=MAX_JOBS).contains(&jobs) => Some(format!(
                "jobs = {jobs}: a source reads with 1 to {MAX_JOBS} connections"
            )),
            _ => None,
        }
    }

    /// The database: `url`, else `DATABASE_URL`, completed by the overrides and the `PG*`
    /// variables as libpq does.
    pub fn settings(&self) -> Result<ConnectionSettings> {
        let from_env = std::env::var("DATABASE_URL").ok();
        let url = self.url.as_ref().map(|url| url.expose());
        Ok(ConnectionSettings::resolve(
            url.or(from_env.as_deref()),
            &self.overrides,
        )?)
    }

    /// Opens the snapshot and reads the catalog; `also_excluded` are models left out besides
    /// `exclude` (a pipeline's `exclude_models` transforms).
    pub async fn build(&self, also_excluded: &[String]) -> Result<PostgresSource> {
        let mut exclude = self.exclude.clone();
        exclude.extend(also_excluded.iter().cloned());
        let options = PostgresSourceOptions {
            schemas: self.schemas.clone(),
            naming: self.naming.unwrap_or_default(),
            include: self.include.clone(),
            exclude,
            sort: self.sort,
            filters: Default::default(),
            jobs: self.jobs.unwrap_or_else(default_jobs),
            piece_pages: self.piece_pages.unwrap_or(0),
        };
        PostgresSource::open(&self.settings()?, options).await
    }
}

/// Connections a PostgreSQL source reads with when the configuration does not say.
pub fn default_jobs() -> usize {
    1
}
