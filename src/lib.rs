//! cityforge-data: streams PostgreSQL data to and from the CityForge export document.
//!
//! Every job is a pipeline: a [`sources::Source`] yields tables as streams of row batches and one
//! or more [`sinks::Sink`]s write them; [`pipeline::run`] drives them, publishing every sink or
//! aborting all. `export` is postgres → export file. Memory stays flat: nothing holds a table.
//!
//! ```no_run
//! # async fn example() -> cityforge_data::error::Result<()> {
//! use cityforge_data::commands::export::{export, ExportOptions};
//! use cityforge_data::pg::ConnectionSettings;
//! use cityforge_data::progress::Progress;
//! use cityforge_data::sinks::export_file::ExportFileOptions;
//! use cityforge_data::storage::{Compression, Location};
//!
//! let settings = ConnectionSettings::from_url("postgres://app@localhost/cityforge")?;
//! let options = ExportOptions {
//!     source: Default::default(),
//!     output: ExportFileOptions {
//!         location: Location::parse("backup.json.gz")?,
//!         compression: Compression::Gzip.into(),
//!         layout: cityforge_data::format::Layout::Pretty,
//!     },
//! };
//! let report = export(&settings, options, &Default::default(), &Progress::hidden()).await?;
//! println!("{} records", report.total_rows());
//! # Ok(()) }
//! ```

pub mod catalog;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod error;
pub mod format;
pub mod logging;
pub mod pg;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod signals;
pub mod sinks;
pub mod sources;
pub mod stdout;
pub mod storage;
pub mod text;
pub mod transforms;
