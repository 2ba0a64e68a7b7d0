//! What the `demo` command, the tests and the benchmarks stand on, and nothing else uses: a
//! throwaway PostgreSQL cluster ([`local_pg`]) and deterministic CityForge sample data
//! ([`sample`]).

pub mod local_pg;
pub mod sample;
