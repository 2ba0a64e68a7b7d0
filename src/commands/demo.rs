//! `demo`: the whole export on an embedded default. Starts a throwaway PostgreSQL, loads the
//! CityForge schema and sample data, exports it to a gzip file in the current folder, stops.

use tokio_util::sync::CancellationToken;

use super::export::export;
use crate::cli::DemoArgs;
use crate::demo::local_pg::LocalPg;
use crate::error::{Error, Result};
use crate::pg::ConnectionSettings;
use crate::progress::Progress;
use crate::sinks::export_file::ExportFileSinkConfig;
use crate::sources::postgres::PostgresSourceConfig;
use crate::storage::Compression;

/// Runs the demo and prints where the export is and what it holds.
pub async fn run(args: DemoArgs, cancel: &CancellationToken) -> Result<()> {
    crate::outln!("Starting a throwaway PostgreSQL…")?;
    let cluster = tokio::task::spawn_blocking(LocalPg::start)
        .await
        .map_err(|e| Error::Internal(format!("cluster start panicked: {e}")))??;
    let admin = ConnectionSettings::from_url(&cluster.url("postgres"))?;
    let client = admin.connect().await?;
    client
        .batch_execute("CREATE DATABASE cityforge")
        .await
        .map_err(|e| Error::database("creating the database for", "(demo)", e))?;
    let settings = ConnectionSettings::from_url(&cluster.url("cityforge"))?;
    let client = settings.connect().await?;
    crate::demo::sample::create_schema(&client).await?;
    crate::outln!("Loading about {} sample rows…", args.rows)?;
    let loaded = crate::demo::sample::load(&client, args.rows).await?;
    drop(client);
    let file = format!(
        "cityforge_demo_{}.json.gz",
        chrono::Local::now().format("%Y%m%d_%H%M%S")
    );
    let source = PostgresSourceConfig {
        url: Some(cluster.url("cityforge").into()),
        ..PostgresSourceConfig::default()
    };
    let sink = ExportFileSinkConfig {
        compress: Some(Compression::Gzip),
        ..ExportFileSinkConfig::new(file.clone())
    };
    let started = std::time::Instant::now();
    let report = export(source, sink, cancel, &Progress::hidden()).await?;
    let elapsed = started.elapsed();
    drop(cluster);
    let size = report.sinks.first().and_then(|s| s.bytes).unwrap_or(0);
    let path = std::env::current_dir()
        .map(|dir| dir.join(&file))
        .unwrap_or_else(|_| file.clone().into());
    crate::outln!(
        "Exported {} records from {} tables ({} loaded) in {:.2} s to {} ({}).",
        report.total_rows(),
        report.models.len(),
        loaded.total(),
        elapsed.as_secs_f64(),
        path.display(),
        indicatif::HumanBytes(size)
    )?;
    for model in &report.models {
        crate::outln!("  {:<22} {:>9}", model.model, model.rows)?;
    }
    crate::outln!("Read it with: zcat {file} | less")?;
    Ok(())
}
