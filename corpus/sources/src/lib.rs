//! Empty: this crate exists only to pin C-source-bundling -sys crates (see Cargo.toml).
