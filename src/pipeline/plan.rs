//! Turns a pipeline file into something that runs: checks it (without I/O, then against the
//! source's catalog), builds the source, transforms and sinks, and runs them on the one engine.
//!
//! Everything that can be found before data moves is: unknown models or columns, transforms on
//! key columns or of the wrong type, filters on referenced models, unclassified columns under the
//! strict policy, a `clean` sink without confirmation, a sink that cannot be opened, and, from a
//! PostgreSQL source into a PostgreSQL sink, a target whose schema differs from the source's
//! (`drift.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::config::{Origin, PipelineError, PipelineFile, SinkConfig, SourceConfig};
use super::drift;
use super::runner::{run as run_pipeline, RunReport};
use super::subset::{select, Graph, Selection};
use crate::catalog::{estimate_rows, Catalog, Naming};
use crate::error::{Error, Result};
use crate::format::Metadata;
use crate::progress::Progress;
use crate::sinks::postgres::CLEAN_CONFIRMATION;
use crate::sinks::{Sink, SinkContext};
use crate::sources::postgres::PostgresSource;
use crate::sources::Source;
use crate::storage::apply_retention;
use crate::transforms::{Transform, TransformConfig};

/// How `run` was asked to behave.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Confirms `clean` sinks that have no `confirm` in the file.
    pub yes: bool,
    /// Database sinks load everything, report, then roll back.
    pub rehearse: bool,
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
    if let SourceConfig::Postgres(config) = file.config.source.get_ref() {
        if let Some(problem) = config.validate() {
            errors.push(file.error_at(file.config.source.span(), problem));
        }
    }
    if let Some(subset) = &file.config.subset {
        for problem in subset.get_ref().validate() {
            errors.push(file.error_at(subset.span(), problem));
        }
        if !matches!(file.config.source.get_ref(), SourceConfig::Postgres(_)) {
            errors.push(file.error_at(
                subset.span(),
                "subset: a subset is computed from a PostgreSQL source's foreign keys; this \
                 source is an export file",
            ));
        }
    }
    if file.config.sinks.is_empty() {
        errors.push(file.error_at(0..0, "the pipeline has no [[sinks]]"));
    }
    for sink in &file.config.sinks {
        if let SinkConfig::ExportFile(config) = sink.get_ref() {
            for problem in config.validate() {
                errors.push(file.error_from(sink.span(), problem));
            }
        }
        if let SinkConfig::Postgres(config) = sink.get_ref() {
            if !options.yes && !config.confirmed() {
                errors.push(file.error_at(
                    sink.span(),
                    format!(
                        "a postgres sink in clean mode deletes data: add confirm = \"{CLEAN_CONFIRMATION}\" \
                         to it, or confirm it on run's command line (a pipeline never prompts)"
                    ),
                ));
            }
        }
    }
    errors
}

/// Models `exclude_models` transforms leave out: the source does not read them at all.
fn excluded_models(file: &PipelineFile) -> Vec<String> {
    let mut excluded = Vec::new();
    for transform in &file.config.transforms {
        if let TransformConfig::ExcludeModels(config) = transform.get_ref() {
            excluded.extend(config.models.iter().cloned());
        }
    }
    excluded
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
    if let Some(Err(problems)) = resolve_subset(file, catalog) {
        errors.extend(problems);
    }
    errors
}

/// The `[subset]` planned against `catalog`, or its problems pointing into the file; `None`
/// without a `[subset]`.
fn resolve_subset(
    file: &PipelineFile,
    catalog: &Catalog,
) -> Option<Result<Graph, Vec<PipelineError>>> {
    let subset = file.config.subset.as_ref()?;
    Some(
        Graph::resolve(subset.get_ref(), catalog).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| file.error_at(subset.span(), p))
                .collect()
        }),
    )
}

/// The subset's rows, computed in `source`'s snapshot before it reads any; `None` without a
/// `[subset]`. The file has passed [`check_catalog`].
async fn subset_selection(
    file: &PipelineFile,
    source: &PostgresSource,
) -> Result<Option<Selection>> {
    let (Some(subset), Some(graph)) = (&file.config.subset, resolve_subset(file, source.catalog()))
    else {
        return Ok(None);
    };
    let config = subset.get_ref();
    let graph = graph.map_err(PipelineError::from_many)?;
    let seed = config.seed.as_deref().unwrap_or_default();
    let chunk = config.chunk_keys.unwrap_or(super::subset::CHUNK);
    let selection = select(
        source.snapshot_client(),
        source.catalog(),
        &graph,
        seed,
        chunk,
        source.filters(),
    )
    .await?;
    Ok(Some(selection))
}

/// What `check --connect` found: the source's catalog, and the rows a subset copies per model.
#[derive(Debug)]
pub struct Checked {
    /// The selected models of the source (empty for an export-file source).
    pub catalog: Catalog,
    /// Per model, the rows the `[subset]` copies.
    pub subset_rows: Option<Vec<(String, u64)>>,
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
pub async fn check_connected(file: &PipelineFile, options: RunOptions) -> Result<Checked> {
    let mut errors = validation_errors(file, options);
    if let Err(unset) = file.require_variables() {
        // The source's URL may be among the unset variables: report what the file shows.
        errors.insert(0, unset);
        return Err(PipelineError::from_many(errors).into());
    }
    let SourceConfig::Postgres(config) = file.config.source.get_ref() else {
        // An export file has no catalog before it is read: the file checks are all there is.
        PipelineError::all(errors)?;
        return Ok(Checked {
            catalog: Catalog {
                tables: Vec::new(),
                naming: Naming::Auto,
                unknown_to_preset: Vec::new(),
            },
            subset_rows: None,
        });
    };
    let opened: Result<PostgresSource> = config.build(&excluded_models(file)).await;
    let mut source = match opened {
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
    let source_database = config
        .settings()
        .map_or_else(|_| source.database().to_owned(), |s| s.database());
    // Every PostgreSQL target against the source's schema, before any write.
    for sink in &file.config.sinks {
        let SinkConfig::Postgres(config) = sink.get_ref() else {
            continue;
        };
        let problem = match config.target_catalog().await {
            Ok(target) => drift_error(&catalog, &source_database, &target, config),
            Err(error) => Some(format!(
                "cannot read the target's catalog: {}",
                crate::text::error_chain(&error)
            )),
        };
        if let Some(problem) = problem {
            errors.push(file.error_at(sink.span(), problem));
        }
    }
    PipelineError::all(errors)?;
    // The subset counts the rows the source will read: its filters first.
    push_down_filters(file, &mut source)?;
    let subset_rows = subset_selection(file, &source).await?.map(|s| s.rows);
    Ok(Checked {
        catalog,
        subset_rows,
    })
}

/// The schema drift between the source's catalog and a PostgreSQL sink's target, as an error
/// message; `None` when the target takes every model as the source sends it.
fn drift_error(
    source: &Catalog,
    source_database: &str,
    target: &Catalog,
    config: &crate::sinks::postgres::PostgresSinkConfig,
) -> Option<String> {
    let found = drift::compare(source, target, config.ignore_unknown_columns);
    if found.is_empty() {
        return None;
    }
    let target_database = config
        .settings()
        .map(|s| s.database())
        .unwrap_or_else(|_| "the target".to_owned());
    Some(drift::message(&found, source_database, &target_database))
}

/// Describes what `run` would do, without moving data (`run --dry-run`).
pub async fn plan(file: &PipelineFile, options: RunOptions) -> Result<String> {
    let Checked {
        catalog,
        subset_rows,
    } = check_connected(file, options).await?;
    let mut out = String::new();
    let _ = writeln!(out, "Pipeline {}", file.origin);
    match file.config.source.get_ref() {
        SourceConfig::Postgres(c) => {
            let settings = c.settings()?;
            let _ = writeln!(out, "Source: PostgreSQL {settings}");
            let client = settings.connect().await?;
            let estimates = estimate_rows(&client, &catalog.tables).await?;
            let heading = match subset_rows {
                None => "estimated rows",
                Some(_) => "rows the subset copies, of about",
            };
            let _ = writeln!(out, "Models ({heading}):");
            for (index, (table, estimate)) in catalog.tables.iter().zip(estimates).enumerate() {
                let copied = subset_rows
                    .as_ref()
                    .map_or(String::new(), |rows| format!("{} of ", rows[index].1));
                let _ = writeln!(out, "  {:<24} {copied}~{estimate}", table.model);
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
                let encrypted = !c.recipients.is_empty() || c.recipients_file.is_some();
                let note = if encrypted { " (age-encrypted)" } else { "" };
                let _ = writeln!(out, "  export file {}{note}", c.location);
            }
            SinkConfig::Postgres(c) => {
                let _ = writeln!(
                    out,
                    "  PostgreSQL {} (mode {})",
                    crate::pg::mask_url(c.url.as_ref().map_or("", |url| url.expose())),
                    c.mode
                );
            }
        }
    }
    out.push_str("Dry run: nothing was read or written.\n");
    Ok(out)
}

/// Runs a pipeline: every check first, then one read of the source into every sink, then, only
/// once every sink is published, retention.
pub async fn run(
    file: &PipelineFile,
    options: RunOptions,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<RunReport> {
    file.require_variables()?;
    validate(file, options)?;
    let excluded = excluded_models(file);
    let writes_documents = file
        .config
        .sinks
        .iter()
        .any(|sink| matches!(sink.get_ref(), SinkConfig::ExportFile(_)));
    // A PostgreSQL source's catalog, which PostgreSQL targets must match, and its database.
    let mut source_catalog = None;
    // The subset's rows, kept before any other transform sees them.
    let mut keep: Option<super::subset::Keep> = None;
    let (mut source, database, zone): (Box<dyn Source>, String, _) =
        match file.config.source.get_ref() {
            SourceConfig::Postgres(config) => {
                let mut source = config.build(&excluded).await?;
                check_catalog(file, source.catalog())?;
                push_down_filters(file, &mut source)?;
                if let Some(selection) = subset_selection(file, &source).await? {
                    let total: u64 = selection.rows.iter().map(|(_, rows)| rows).sum();
                    info!(rows = total, "Subset selected.");
                    source.expect_rows(selection.rows.iter().map(|(_, rows)| *rows).collect());
                    keep = Some(selection.keep);
                }
                let name = config
                    .settings()
                    .map_or_else(|_| source.database().to_owned(), |s| s.database());
                source_catalog = Some((source.catalog().clone(), name));
                let database = source.database().to_owned();
                let zone = source.time_zone();
                (Box::new(source), database, zone)
            }
            SourceConfig::ExportFile(config) => {
                let mut source = config.build(&excluded).await?;
                // Only a document written from this one needs its database's name up front.
                let database = if writes_documents {
                    source.early_metadata().await?.map(|m| m.database)
                } else {
                    None
                };
                (Box::new(source), database.unwrap_or_default(), None)
            }
        };
    let pushed_down = matches!(file.config.source.get_ref(), SourceConfig::Postgres(_));
    let mut transforms: Vec<Box<dyn Transform>> = Vec::new();
    if let Some(keep) = keep {
        transforms.push(Box::new(keep));
    }
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
    let context = SinkContext {
        metadata: Metadata::now(&database).in_zone(zone),
        started: chrono::Utc::now().naive_utc(),
        rehearse: options.rehearse,
    };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let mut retained = Vec::new();
    for sink in &file.config.sinks {
        let opened = open_sink(sink.get_ref(), &context).await;
        match opened {
            Ok((opened, target)) => {
                sinks.push(opened);
                // Opening read the target's catalog; nothing is written before the first batch.
                let drift = match (&source_catalog, target, sink.get_ref()) {
                    (Some((source, name)), Some(target), SinkConfig::Postgres(config)) => {
                        drift_error(source, name, &target, config)
                    }
                    _ => None,
                };
                if let Some(problem) = drift {
                    for sink in sinks {
                        sink.abort().await;
                    }
                    return Err(file.error_at(sink.span(), problem).into());
                }
            }
            Err(error) => {
                for sink in sinks {
                    sink.abort().await;
                }
                return Err(match file.place(sink.span()) {
                    Some(place) => Error::SinkOpen {
                        place,
                        cause: Box::new(error),
                    },
                    None => error,
                });
            }
        }
        if let SinkConfig::ExportFile(config) = sink.get_ref() {
            if config.retention().is_active() {
                retained.push((config, config.target(&context)?));
            }
        }
    }
    if let Origin::File(path) = &file.origin {
        info!(pipeline = %path.display(), sinks = sinks.len(), "Running pipeline.");
    }
    let report = run_pipeline(source.as_mut(), &transforms, sinks, cancel, progress).await?;
    // Only after every sink was published: older exports go.
    for (config, written) in retained {
        let retention = config.retention();
        let deleted = apply_retention(config.retention_pattern(), &written, retention).await?;
        info!(
            deleted = deleted.len(),
            location = %written,
            keep_last = retention.keep_last.map_or(String::new(), |n| n.to_string()),
            keep_days = retention.keep_days.map_or(String::new(), |d| d.to_string()),
            "Retention applied."
        );
    }
    Ok(report)
}

/// Filters run inside the source's query, in the snapshot it already holds.
fn push_down_filters(file: &PipelineFile, source: &mut PostgresSource) -> Result<()> {
    let mut conditions = Vec::new();
    for transform in &file.config.transforms {
        if let TransformConfig::Filter(filter) = transform.get_ref() {
            if let Some(table) = source.catalog().table(&filter.model) {
                let condition = filter.sql_condition(table).ok_or_else(|| {
                    file.error_at(
                        transform.span(),
                        "this filter cannot run inside the PostgreSQL query",
                    )
                })?;
                conditions.push((table.model.clone(), condition));
            }
        }
    }
    for (model, condition) in conditions {
        source.add_filter(&model, condition);
    }
    Ok(())
}

/// Builds one sink of the pipeline; for a PostgreSQL sink, also the target's catalog it read.
async fn open_sink(
    config: &SinkConfig,
    context: &SinkContext,
) -> Result<(Box<dyn Sink>, Option<Catalog>)> {
    Ok(match config {
        SinkConfig::ExportFile(c) => (Box::new(c.build(context).await?), None),
        SinkConfig::Postgres(c) => {
            let sink = c.build(context).await?;
            let catalog = sink.catalog().clone();
            (Box::new(sink), Some(catalog))
        }
    })
}
