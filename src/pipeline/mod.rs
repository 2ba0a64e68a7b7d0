//! Pipelines: one source, transforms, one or more sinks, run by one engine. The `export` and
//! `import` commands build fixed pipelines; pipeline files (TOML, [`config`]) build any, checked
//! and run by [`plan`].

pub mod config;
pub mod drift;
pub mod plan;
pub mod runner;
pub mod secrets;
pub mod subset;

pub use runner::{run, ModelCount, RunReport};
