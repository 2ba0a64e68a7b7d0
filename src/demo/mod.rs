//! What the `demo` command, the tests and the benchmarks stand on, and nothing else uses: a
//! throwaway PostgreSQL cluster ([`local_pg`]) and deterministic CityForge sample data
//! ([`sample`]).

pub mod local_pg;
pub mod sample;

impl From<local_pg::LocalPgError> for crate::error::Error {
    fn from(error: local_pg::LocalPgError) -> Self {
        crate::error::Error::Demo(Box::new(error))
    }
}

impl From<sample::SampleError> for crate::error::Error {
    fn from(error: sample::SampleError) -> Self {
        crate::error::Error::Demo(Box::new(error))
    }
}
