pub mod audit;
pub mod cfg;
pub mod demo;
pub mod diff;
pub mod digest;
pub mod introspect;
pub mod snapshot;
