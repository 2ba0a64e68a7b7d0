//! `[[sinks]] type = "postgres"` in a pipeline file, and what `import`'s flags turn into: which
//! database, under which mode, which models.

use serde::{Deserialize, Deserializer};

use super::{ImportMode, PostgresSink, PostgresSinkOptions, CLEAN_CONFIRMATION};
use crate::catalog::{Catalog, Naming};
use crate::error::Result;
use crate::pg::{ConnectionOverrides, ConnectionSettings};
use crate::sinks::SinkContext;
use crate::text::Secret;

/// A PostgreSQL sink as configured.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// Connection URL of the target database (required in a pipeline file).
    #[serde(deserialize_with = "required")]
    pub url: Option<Secret>,
    /// `skip`, `replace`, `merge` or `clean`.
    #[serde(default)]
    pub mode: ImportMode,
    /// For `clean`: must be `"DELETE ALL DATA"`.
    pub confirm: Option<String>,
    /// Only these models.
    pub include: Option<Vec<String>>,
    /// Not these models.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Schemas of the target tables (default `["public"]`).
    #[serde(default, alias = "schema")]
    pub schemas: Vec<String>,
    /// How model names map to tables (default: detected from the target's tables).
    pub naming: Option<Naming>,
    /// Commit after each model.
    #[serde(default)]
    pub commit_per_model: bool,
    /// Check foreign keys row by row even into empty tables (see `import --per-row-fk-checks`).
    #[serde(default)]
    pub per_row_fk_checks: bool,
    /// For `clean`: also empty these tables (models or table names) in the same transaction,
    /// e.g. tables outside the import that reference it. Only the tables named are emptied.
    #[serde(default)]
    pub also_empty: Vec<String>,
    /// Drop record keys that are not columns of the target (with a warning) instead of failing.
    #[serde(default)]
    pub ignore_unknown_columns: bool,
    /// Connection parts given as flags (`-h -p -U -d`); with them, the parts the URL leaves out
    /// come from the `PG*` variables, as in libpq. A pipeline file's sink has none: its URL is
    /// taken as written, since the environment describes the source.
    #[serde(skip)]
    pub overrides: Option<ConnectionOverrides>,
}

/// A field that may be absent in memory but not in a file (serde's `Option` would allow that).
fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    Secret::deserialize(deserializer).map(Some)
}

impl PostgresSinkConfig {
    /// Whether the configuration itself confirms a `clean` (or the mode deletes nothing).
    pub fn confirmed(&self) -> bool {
        self.mode != ImportMode::Clean || self.confirm.as_deref() == Some(CLEAN_CONFIRMATION)
    }

    /// The target database.
    pub fn settings(&self) -> Result<ConnectionSettings> {
        let url = self.url.as_ref().map(Secret::expose);
        Ok(match (&self.overrides, url) {
            (None, Some(url)) => ConnectionSettings::from_url(url)?,
            (overrides, url) => {
                ConnectionSettings::resolve(url, &overrides.clone().unwrap_or_default())?
            }
        })
    }

    /// Reads the target's catalog as the sink would load it (its schemas, naming, `include` and
    /// `exclude`), read-only and without opening the load's transaction: what `check --connect`
    /// compares with the source's.
    pub async fn target_catalog(&self) -> Result<Catalog> {
        let client = self.settings()?.connect().await?;
        let schemas = if self.schemas.is_empty() {
            vec!["public".to_owned()]
        } else {
            self.schemas.clone()
        };
        let mut catalog = Catalog::load(&client, &schemas, self.naming.unwrap_or_default()).await?;
        catalog.select(self.include.as_deref(), &self.exclude)?;
        Ok(catalog)
    }

    /// Connects, reads the target's catalog and opens the transaction.
    pub async fn build(&self, context: &SinkContext) -> Result<PostgresSink> {
        let options = PostgresSinkOptions {
            mode: self.mode,
            schemas: self.schemas.clone(),
            naming: self.naming.unwrap_or_default(),
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            commit_per_model: self.commit_per_model,
            per_row_fk_checks: self.per_row_fk_checks,
            also_empty: self.also_empty.clone(),
            dry_run: context.rehearse,
            ignore_unknown_columns: self.ignore_unknown_columns,
        };
        PostgresSink::open(&self.settings()?, options).await
    }
}
