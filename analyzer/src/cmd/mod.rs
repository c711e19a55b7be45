pub mod cfg;
