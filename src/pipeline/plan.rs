//! Turns a pipeline file into something that runs: checks it (without I/O, then against the
//! source's catalog), builds the source, transforms and sinks, and runs them on the one engine.
//!
//! Everything that can be found before data moves is: unknown models or columns, transforms on
//! key columns or of the wrong type, filters on referenced models, unclassified columns under the
//! strict policy, a `clean` sink without confirmation, a sink that cannot be opened.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::config::{PipelineError, PipelineFile, SinkConfig, SourceConfig};
use super::runner::{run as run_pipeline, RunReport};
use crate::catalog::{estimate_rows, Catalog, Naming};
use crate::error::{Error, Result};
use crate::format::{Layout, Metadata};
use crate::pg::ConnectionSettings;
use crate::progress::Progress;
use crate::sinks::export_file::{ExportFileOptions, ExportFileSink};
use crate::sinks::postgres::{ImportMode, PostgresSink, PostgresSinkOptions, CLEAN_CONFIRMATION};
use crate::sinks::Sink;
use crate::sources::export_file::{ExportFileSource, ExportFileSourceOptions};
use crate::sources::postgres::{PostgresSource, PostgresSourceOptions};
use crate::sources::Source;
use crate::storage::{
    apply_retention, check_retention_pattern, expand_placeholders, Location, Retention,
    StoreOptions,
};
use crate::transforms::{Transform, TransformConfig};

/// How `run` was asked to behave.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Confirms `clean` sinks that have no `confirm` in the file.
    pub yes: bool,
}

/// Checks that need no I/O: transform options, sink options. Every problem is reported, not only
/// the first.
pub fn validate(file: &PipelineFile, options: RunOptions) -> Result<(), PipelineError> {
    PipelineError::all(validation_errors(file, options))
}

fn validation_errors(file: &PipelineFile, options: RunOptions) -> Vec<PipelineError> {
    let mut errors = Vec::new();
    for transform in &file.config.transforms {
        if let Err(e) = transform.get_ref().validate() {
            errors.push(file.error_at(transform.span(), e.to_string()));
        }
    }
    if file.config.sinks.is_empty() {
        errors.push(file.error_at(0..0, "the pipeline has no [[sinks]]"));
    }
    for sink in &file.config.sinks {
        if let SinkConfig::ExportFile(config) = sink.get_ref() {
            if config.keep_last.is_some() || config.keep_days.is_some() {
                if let Err(e) = check_retention_pattern(&config.location) {
                    errors.push(file.error_at(sink.span(), e.to_string()));
                }
            }
            // A location that does not parse is reported when the sink opens.
            if let (Some(_), Ok(location)) =
                (config.compress_level, Location::parse(&config.location))
            {
                if let Err(e) = config.codec(&location) {
                    errors.push(file.error_at(sink.span(), e.to_string()));
                }
            }
        }
        if let SinkConfig::Postgres(config) = sink.get_ref() {
            if config.mode == ImportMode::Clean
                && !options.yes
                && config.confirm.as_deref() != Some(CLEAN_CONFIRMATION)
            {
                errors.push(file.error_at(
                    sink.span(),
                    format!(
                        "a postgres sink in clean mode deletes data: add confirm = \"{CLEAN_CONFIRMATION}\" \
                         to it, or pass --yes to run (a pipeline never prompts)"
                    ),
                ));
            }
        }
    }
    errors
}

/// Models the source selects: its include/exclude plus `exclude_models` transforms.
fn source_selection(file: &PipelineFile) -> (Option<Vec<String>>, Vec<String>) {
    let (include, mut exclude) = match file.config.source.get_ref() {
        SourceConfig::Postgres(c) => (c.include.clone(), c.exclude.clone()),
        SourceConfig::ExportFile(c) => (c.include.clone(), c.exclude.clone()),
    };
    for transform in &file.config.transforms {
        if let TransformConfig::ExcludeModels(config) = transform.get_ref() {
            exclude.extend(config.models.iter().cloned());
        }
    }
    (include, exclude)
}

/// Checks against the source's catalog (after selection): models and columns exist, transforms
/// fit their columns, filters are on unreferenced models, and the strict policy holds. Every
/// problem is reported, not only the first.
pub fn check_catalog(file: &PipelineFile, catalog: &Catalog) -> Result<(), PipelineError> {
    PipelineError::all(catalog_errors(file, catalog))
}

fn catalog_errors(file: &PipelineFile, catalog: &Catalog) -> Vec<PipelineError> {
    let mut errors = Vec::new();
    for transform in &file.config.transforms {
        if let Err(e) = transform.get_ref().check_catalog(&catalog.tables) {
            errors.push(file.error_at(transform.span(), e.to_string()));
        }
    }
    if file.config.policy.strict {
        if let Err(e) = check_policy(file, catalog) {
            errors.push(e);
        }
    }
    errors
}

/// The strict policy: every column transformed or kept; otherwise list every unclassified column
/// with a ready-to-paste snippet.
fn check_policy(file: &PipelineFile, catalog: &Catalog) -> Result<(), PipelineError> {
    let mut classified: BTreeSet<(String, String)> = BTreeSet::new();
    for transform in &file.config.transforms {
        let config = transform.get_ref();
        if matches!(
            config,
            TransformConfig::Filter(_) | TransformConfig::ExcludeModels(_)
        ) {
            continue;
        }
        for column in config.columns() {
            classified.insert((config.model().to_owned(), column.clone()));
        }
    }
    let keep = &file.config.policy.keep;
    let mut missing: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for table in &catalog.tables {
        let kept = keep.get(&table.model);
        for column in &table.columns {
            let is_kept =
                kept.is_some_and(|list| list.iter().any(|c| c == "*" || *c == column.name));
            let is_transformed = classified.contains(&(table.model.clone(), column.name.clone()));
            if !is_kept && !is_transformed {
                if !missing.contains_key(table.model.as_str()) {
                    order.push(&table.model);
                }
                missing.entry(&table.model).or_default().push(&column.name);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut message = String::from(
        "strict policy: these columns are neither transformed nor kept, so they could carry \
         personal data into the output:",
    );
    for model in &order {
        for column in &missing[model] {
            let _ = write!(message, "\n  {model}.{column}");
        }
    }
    message.push_str(
        "\nClassify each one: transform it, or keep it as is by adding to the file:\n[policy.keep]",
    );
    for model in &order {
        let mut columns: Vec<String> = keep.get(*model).cloned().unwrap_or_default();
        columns.extend(missing[model].iter().map(|c| c.to_string()));
        let quoted: Vec<String> = columns.iter().map(|c| format!("{c:?}")).collect();
        let key = if model.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            model.to_string()
        } else {
            format!("{model:?}")
        };
        let _ = write!(message, "\n{key} = [{}]", quoted.join(", "));
    }
    Err(file.error_at(0..0, message))
}

/// Reads the source's catalog (read-only) and runs every check: `check --connect`. Every problem
/// is reported: those in the file, and those against the catalog when the source can be read.
pub async fn check_connected(file: &PipelineFile, options: RunOptions) -> Result<Catalog> {
    let mut errors = validation_errors(file, options);
    if let Err(unset) = file.require_variables() {
        // The source's URL may be among the unset variables: report what the file shows.
        errors.insert(0, unset);
        return Err(PipelineError::from_many(errors).into());
    }
    let SourceConfig::Postgres(config) = file.config.source.get_ref() else {
        // An export file has no catalog before it is read: the file checks are all there is.
        PipelineError::all(errors)?;
        return Ok(Catalog {
            tables: Vec::new(),
            naming: Naming::Auto,
            unknown_to_preset: Vec::new(),
        });
    };
    let opened: Result<PostgresSource> = async {
        let settings = source_settings(config.url.as_deref())?;
        PostgresSource::open(&settings, postgres_source_options(file)?).await
    }
    .await;
    let source = match opened {
        Ok(source) => source,
        Err(error) if errors.is_empty() => return Err(error),
        Err(error) => {
            errors.push(file.error_at(
                file.config.source.span(),
                format!(
                    "cannot read the source's catalog: {}",
                    crate::text::error_chain(&error)
                ),
            ));
            return Err(PipelineError::from_many(errors).into());
        }
    };
    let catalog = source.catalog().clone();
    errors.extend(catalog_errors(file, &catalog));
    PipelineError::all(errors)?;
    Ok(catalog)
}

/// The source database: the file's `url`, else `DATABASE_URL`, each completed by the `PG*`
/// variables; else the `PG*` and `POSTGRES_*` variables.
fn source_settings(url: Option<&str>) -> Result<ConnectionSettings> {
    let from_env = std::env::var("DATABASE_URL").ok();
    Ok(ConnectionSettings::resolve(
        url.or(from_env.as_deref()),
        &crate::pg::ConnectionOverrides::default(),
    )?)
}

fn postgres_source_options(file: &PipelineFile) -> Result<PostgresSourceOptions, PipelineError> {
    let SourceConfig::Postgres(config) = file.config.source.get_ref() else {
        return Ok(PostgresSourceOptions::default());
    };
    let (include, exclude) = source_selection(file);
    Ok(PostgresSourceOptions {
        schemas: config.schemas.clone(),
        naming: config.naming.unwrap_or_default(),
        include,
        exclude,
        sort: config.sort,
        filters: Default::default(),
    })
}

/// Describes what `run` would do, without moving data (`run --dry-run`).
pub async fn plan(file: &PipelineFile, options: RunOptions) -> Result<String> {
    let catalog = check_connected(file, options).await?;
    let mut out = String::new();
    let _ = writeln!(out, "Pipeline {}", file.path.display());
    match file.config.source.get_ref() {
        SourceConfig::Postgres(c) => {
            let settings = source_settings(c.url.as_deref())?;
            let _ = writeln!(out, "Source: PostgreSQL {settings}");
            let client = settings.connect().await?;
            let estimates = estimate_rows(&client, &catalog.tables).await?;
            let _ = writeln!(out, "Models (estimated rows):");
            for (table, estimate) in catalog.tables.iter().zip(estimates) {
                let _ = writeln!(out, "  {:<24} ~{estimate}", table.model);
                for transform in &file.config.transforms {
                    let config = transform.get_ref();
                    if !matches!(config, TransformConfig::ExcludeModels(_))
                        && config.model() == table.model
                    {
                        let _ = writeln!(
                            out,
                            "      {} on {}",
                            config.kind(),
                            config.columns().join(", ")
                        );
                    }
                }
            }
        }
        SourceConfig::ExportFile(c) => {
            let _ = writeln!(out, "Source: export file {}", c.location);
            for transform in &file.config.transforms {
                let config = transform.get_ref();
                if !matches!(config, TransformConfig::ExcludeModels(_)) {
                    let _ = writeln!(
                        out,
                        "  {} on {}.{}",
                        config.kind(),
                        config.model(),
                        config.columns().join(", ")
                    );
                }
            }
        }
    }
    let _ = writeln!(out, "Sinks:");
    for sink in &file.config.sinks {
        match sink.get_ref() {
            SinkConfig::ExportFile(c) => {
                let _ = writeln!(out, "  export file {}", c.location);
            }
            SinkConfig::Postgres(c) => {
                let _ = writeln!(
                    out,
                    "  PostgreSQL {} (mode {})",
                    crate::pg::mask_url(&c.url),
                    c.mode
                );
            }
        }
    }
    out.push_str("Dry run: nothing was read or written.\n");
    Ok(out)
}

/// Runs a pipeline file: every check first, then one read of the source into every sink.
pub async fn run(
    file: &PipelineFile,
    options: RunOptions,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<RunReport> {
    file.require_variables()?;
    validate(file, options)?;
    let (mut source, database, zone): (Box<dyn Source>, String, _) =
        match file.config.source.get_ref() {
            SourceConfig::Postgres(config) => {
                let settings = source_settings(config.url.as_deref())?;
                let mut source_options = postgres_source_options(file)?;
                let source = PostgresSource::open(&settings, source_options.clone()).await?;
                check_catalog(file, source.catalog())?;
                // Filters run inside the query: push them down and reopen the snapshot with them.
                let mut pushed = false;
                for transform in &file.config.transforms {
                    if let TransformConfig::Filter(filter) = transform.get_ref() {
                        if let Some(table) = source.catalog().table(&filter.model) {
                            source_options
                                .filters
                                .entry(table.model.clone())
                                .or_default()
                                .push(filter.sql_condition(table).ok_or_else(|| {
                                    file.error_at(
                                        transform.span(),
                                        "this filter cannot run inside the PostgreSQL query",
                                    )
                                })?);
                            pushed = true;
                        }
                    }
                }
                let source = if pushed {
                    drop(source);
                    PostgresSource::open(&settings, source_options).await?
                } else {
                    source
                };
                let database = source.database().to_owned();
                let zone = source.time_zone();
                (Box::new(source), database, zone)
            }
            SourceConfig::ExportFile(config) => {
                let (include, exclude) = source_selection(file);
                let mut source = ExportFileSource::open(ExportFileSourceOptions {
                    location: Location::parse_user(&config.location, store(&config.store))?,
                    include,
                    exclude,
                })
                .await?;
                let database = source
                    .early_metadata()
                    .await?
                    .map(|m| m.database)
                    .unwrap_or_default();
                (Box::new(source), database, None)
            }
        };
    let pushed_down = matches!(file.config.source.get_ref(), SourceConfig::Postgres(_));
    let mut transforms: Vec<Box<dyn Transform>> = Vec::new();
    for transform in &file.config.transforms {
        let config = transform.get_ref();
        match config {
            TransformConfig::ExcludeModels(_) => continue,
            TransformConfig::Filter(_) if pushed_down => continue,
            _ => {}
        }
        transforms.push(
            config
                .build()
                .map_err(|e| file.error_at(transform.span(), e.to_string()))?,
        );
    }
    let metadata = Metadata::now(&database).in_zone(zone);
    let started = chrono::Utc::now().naive_utc();
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let mut written: Vec<(&str, Location, Retention)> = Vec::new();
    for sink in &file.config.sinks {
        let opened = open_sink(sink.get_ref(), &metadata, started).await;
        match opened {
            Ok((opened, location)) => {
                sinks.push(opened);
                if let (SinkConfig::ExportFile(c), Some(location)) = (sink.get_ref(), location) {
                    let retention = Retention {
                        keep_last: c.keep_last,
                        keep_days: c.keep_days,
                        force: c.force_retention,
                    };
                    if retention.is_active() {
                        written.push((&c.location, location, retention));
                    }
                }
            }
            Err(error) => {
                for sink in sinks {
                    sink.abort().await;
                }
                let (line, column) = super::config::line_column(&file.text, sink.span().start);
                return Err(Error::SinkOpen {
                    place: format!("{}:{line}:{column}", file.path.display()),
                    cause: Box::new(error),
                });
            }
        }
    }
    info!(pipeline = %file.path.display(), sinks = sinks.len(), "Running pipeline.");
    let report = run_pipeline(source.as_mut(), &transforms, sinks, cancel, progress).await?;
    // Only after every sink was published: older exports go.
    for (pattern, location, retention) in written {
        let deleted = apply_retention(pattern, &location, retention).await?;
        info!(location = %location, deleted = deleted.len(), "Retention applied.");
    }
    Ok(report)
}

fn store(options: &BTreeMap<String, String>) -> StoreOptions {
    options
        .iter()
        .fold(StoreOptions::new(), |all, (key, value)| {
            all.with(key, value)
        })
}

/// Opens a sink; for an export file also returns where it writes (for retention).
async fn open_sink(
    config: &SinkConfig,
    metadata: &Metadata,
    started: chrono::NaiveDateTime,
) -> Result<(Box<dyn Sink>, Option<Location>)> {
    Ok(match config {
        SinkConfig::ExportFile(c) => {
            let location =
                Location::parse_user(&expand_placeholders(&c.location, started), store(&c.store))?;
            let compression = c.codec(&location)?;
            let written = location.clone();
            let sink = Box::new(
                ExportFileSink::create(
                    ExportFileOptions {
                        location,
                        compression,
                        layout: if c.compact {
                            Layout::Compact
                        } else {
                            Layout::Pretty
                        },
                    },
                    metadata,
                )
                .await?,
            );
            (sink, Some(written))
        }
        SinkConfig::Postgres(c) => {
            let settings = ConnectionSettings::from_url(&c.url)?;
            let sink = Box::new(
                PostgresSink::open(
                    &settings,
                    PostgresSinkOptions {
                        mode: c.mode,
                        schemas: c.schemas.clone(),
                        naming: Naming::Detect,
                        include: c.include.clone(),
                        exclude: c.exclude.clone(),
                        commit_per_model: c.commit_per_model,
                        per_row_fk_checks: c.per_row_fk_checks,
                        also_empty: c.also_empty.clone(),
                        dry_run: false,
                        ignore_unknown_columns: false,
                    },
                )
                .await?,
            );
            (sink, None)
        }
    })
}
