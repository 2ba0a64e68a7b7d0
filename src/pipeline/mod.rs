//! Pipelines: one source, transforms, one or more sinks, run by one engine. The `export` and
//! `import` commands build fixed pipelines; pipeline files (TOML) build any.

pub mod runner;

pub use runner::{run, ModelCount, RunReport};
