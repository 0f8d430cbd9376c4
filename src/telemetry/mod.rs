//! Logs: human-readable or JSON lines on stderr. Audit events are log events with
//! `target: "audit"` (metrics and the audit store come with their issues).

/// `[log]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// An `EnvFilter` directive, e.g. `info` or `warden=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
    /// JSON lines instead of text.
    pub json: bool,
}

/// Installs the global subscriber (once; later calls are ignored, as in tests).
pub fn init(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a terminal (and never under NO_COLOR): a log file or pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if cfg.json { builder.json().try_init() } else { builder.try_init() };
}
