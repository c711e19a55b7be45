pub mod cfg;
pub mod demo;
pub mod digest;
pub mod introspect;
pub mod snapshot;
