//! Validated configuration: flags, then env, then the TOML config file.
